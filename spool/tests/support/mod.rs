//! Test support: backends to run the suites against. Each scenario is an
//! `async fn(Db)`; `both!` instantiates it once with a fresh SQLite file and
//! once with a fresh database on a throwaway PostgreSQL cluster (one cluster
//! per test binary, `quai_test_support::pg`).
#![allow(dead_code)]

pub use quai_test_support::pg;

use quai_spool::Spool;

/// A fresh, empty spool database of either backend.
pub struct Db {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    pub async fn spool(&self, instance: &str) -> Spool {
        Spool::connect(&self.url, instance).await.expect("connect")
    }
}

pub fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("spool.db").display());
    Db {
        url,
        _dir: Some(dir),
    }
}

pub fn pg_db(name: &str) -> Db {
    let url = pg::PgCluster::shared().create_database(name);
    Db { url, _dir: None }
}

/// `both!(scenario, ...)`: a `sqlite::scenario` and a `postgres::scenario`
/// test for each `async fn scenario(db: Db)` of the calling file.
#[macro_export]
macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::sqlite_db()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::pg_db(stringify!($name))).await
                }
            )*
        }
    };
}
