//! The recipient directory on both backends: import, atomic swap, an
//! invalid file keeping the previous version, the specificity rule and
//! validity dates.

mod support;

use std::collections::HashMap;
use std::io::Cursor;

use chrono::NaiveDate;
use quai_spool::*;
use support::Db;

both!(
    import_and_lookup,
    swap_replaces_whole_version,
    invalid_file_keeps_previous,
    specificity,
    validity_dates,
    contradictions_in_file,
    config_and_file_together,
    hundred_thousand_lines,
);

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn known(p: &str) -> bool {
    ["alpha", "beta", "gamma"].contains(&p)
}

async fn load(
    spool: &Spool,
    csv: &str,
    config: &HashMap<String, String>,
) -> std::result::Result<Loaded, LoadRefused> {
    let checks = LineChecks {
        known_partner: &known,
        config,
    };
    spool
        .load_directory(
            DirectorySource::File,
            CsvLines::new(Cursor::new(csv.as_bytes()), &checks),
            Some("stamp"),
        )
        .await
        .expect("load")
}

async fn partner(spool: &Spool, address: &str, on: &str) -> Option<String> {
    spool
        .route(address, day(on))
        .await
        .unwrap()
        .map(|r| r.partner)
}

async fn import_and_lookup(db: Db) {
    let spool = db.spool("t").await;
    let loaded = load(
        &spool,
        "address,partner,valid_from,valid_to\n0225:111111111,alpha,,\n\n0225:222222222,beta,2020-01-01,\n",
        &HashMap::new(),
    )
    .await
    .unwrap();
    assert_eq!(loaded.lines, 2);
    let r = spool
        .route("0225:111111111", day("2026-01-01"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.partner, "alpha");
    assert_eq!(r.line, Some(2));
    assert_eq!(r.source, DirectorySource::File);
    assert_eq!(
        partner(&spool, "0225:222222222", "2026-01-01")
            .await
            .as_deref(),
        Some("beta")
    );
    assert_eq!(partner(&spool, "0225:333333333", "2026-01-01").await, None);
    let versions = spool.directory_versions().await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].lines, 2);
    assert_eq!(versions[0].stamp.as_deref(), Some("stamp"));
}

async fn swap_replaces_whole_version(db: Db) {
    let spool = db.spool("t").await;
    let h = "address,partner,valid_from,valid_to\n";
    load(
        &spool,
        &format!("{h}0225:111111111,alpha,,\n"),
        &HashMap::new(),
    )
    .await
    .unwrap();
    let second = load(
        &spool,
        &format!("{h}0225:222222222,beta,,\n"),
        &HashMap::new(),
    )
    .await
    .unwrap();
    // The old line is gone, the new one is there; one current version.
    assert_eq!(partner(&spool, "0225:111111111", "2026-01-01").await, None);
    assert_eq!(
        partner(&spool, "0225:222222222", "2026-01-01")
            .await
            .as_deref(),
        Some("beta")
    );
    let versions = spool.directory_versions().await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].version, second.version);
}

async fn invalid_file_keeps_previous(db: Db) {
    let spool = db.spool("t").await;
    let h = "address,partner,valid_from,valid_to\n";
    let first = load(
        &spool,
        &format!("{h}0225:111111111,alpha,,\n"),
        &HashMap::new(),
    )
    .await
    .unwrap();
    let bad = format!(
        "{h}0225:222222222,beta,,\n225:1,alpha,,\n0225:333333333,nobody,,\n\
         0225:444444444,alpha,2026-13-01,\n0225:555555555,alpha,2026-02-01,2026-01-01\n\
         0225:666 666,alpha,,\nonly,two\n"
    );
    let refused = load(&spool, &bad, &HashMap::new()).await.unwrap_err();
    let lines: Vec<u64> = refused.problems.iter().map(|p| p.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8], "{refused:?}");
    assert_eq!(refused.total, 6);
    assert!(refused.problems[1].message.contains("nobody"));
    // The previous version is still the one answering.
    assert_eq!(
        partner(&spool, "0225:111111111", "2026-01-01")
            .await
            .as_deref(),
        Some("alpha")
    );
    assert_eq!(partner(&spool, "0225:222222222", "2026-01-01").await, None);
    assert_eq!(
        spool.directory_versions().await.unwrap()[0].version,
        first.version
    );
    // A wrong header is refused too.
    let refused = load(&spool, "addr,partner\n0225:1,alpha,,\n", &HashMap::new())
        .await
        .unwrap_err();
    assert_eq!(refused.problems[0].line, 1);
}

async fn specificity(db: Db) {
    let spool = db.spool("t").await;
    load(
        &spool,
        "address,partner,valid_from,valid_to\n\
         0225:732829320,alpha,,\n\
         0225:732829320_73282932000074,beta,,\n\
         0225:732829320_73282932000074_SERVICE1,gamma,,\n",
        &HashMap::new(),
    )
    .await
    .unwrap();
    let on = "2026-06-01";
    // Exact routing code line.
    assert_eq!(
        partner(&spool, "0225:732829320_73282932000074_SERVICE1", on)
            .await
            .as_deref(),
        Some("gamma")
    );
    // An unknown routing code falls back to its SIRET line, then its SIREN.
    assert_eq!(
        partner(&spool, "0225:732829320_73282932000074_OTHER", on)
            .await
            .as_deref(),
        Some("beta")
    );
    assert_eq!(
        partner(&spool, "0225:732829320_73282932000082_X", on)
            .await
            .as_deref(),
        Some("alpha")
    );
    // Legal identifiers: SIRET (0009) and SIREN (0002) map onto 0225 lines.
    assert_eq!(
        partner(&spool, "0009:73282932000074", on).await.as_deref(),
        Some("beta")
    );
    assert_eq!(
        partner(&spool, "0009:73282932000082", on).await.as_deref(),
        Some("alpha")
    );
    assert_eq!(
        partner(&spool, "0002:732829320", on).await.as_deref(),
        Some("alpha")
    );
    let r = spool
        .route("0009:73282932000082", day(on))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.address, "0225:732829320");
    // Another scheme matches only itself.
    assert_eq!(partner(&spool, "0088:732829320", on).await, None);
}

async fn validity_dates(db: Db) {
    let spool = db.spool("t").await;
    load(
        &spool,
        "address,partner,valid_from,valid_to\n\
         0225:111111111,alpha,,2025-12-31\n\
         0225:111111111,beta,2026-01-01,\n\
         0225:111111111_11111111100011,gamma,2026-03-01,2026-03-31\n",
        &HashMap::new(),
    )
    .await
    .unwrap();
    let a = "0225:111111111_11111111100011";
    assert_eq!(
        partner(&spool, a, "2025-12-31").await.as_deref(),
        Some("alpha")
    );
    assert_eq!(
        partner(&spool, a, "2026-01-01").await.as_deref(),
        Some("beta")
    );
    // Both ends inclusive; outside, the SIRET line is not valid and the
    // SIREN line answers.
    assert_eq!(
        partner(&spool, a, "2026-03-01").await.as_deref(),
        Some("gamma")
    );
    assert_eq!(
        partner(&spool, a, "2026-03-31").await.as_deref(),
        Some("gamma")
    );
    assert_eq!(
        partner(&spool, a, "2026-04-01").await.as_deref(),
        Some("beta")
    );
}

async fn contradictions_in_file(db: Db) {
    let spool = db.spool("t").await;
    let refused = load(
        &spool,
        "address,partner,valid_from,valid_to\n\
         0225:111111111,alpha,,2025-12-31\n\
         0225:111111111,beta,2025-12-31,\n\
         0225:222222222,alpha,,2025-12-31\n\
         0225:222222222,beta,2026-01-01,\n",
        &HashMap::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(refused.total, 1, "{refused:?}");
    assert_eq!(refused.problems[0].line, 3);
    assert!(refused.problems[0].message.contains("line 2"));
    assert!(spool.directory_versions().await.unwrap().is_empty());
}

async fn config_and_file_together(db: Db) {
    let spool = db.spool("t").await;
    let config: HashMap<String, String> =
        [("0225:999999999".to_owned(), "gamma".to_owned())].into();
    let lines = config.iter().map(|(a, p)| {
        Ok(DirectoryLine {
            address: a.clone(),
            partner: p.clone(),
            valid_from: None,
            valid_to: None,
            line: 0,
        })
    });
    spool
        .load_directory(DirectorySource::Config, lines, None)
        .await
        .unwrap()
        .unwrap();
    // A file line contradicting the configuration is refused.
    let refused = load(
        &spool,
        "address,partner,valid_from,valid_to\n0225:999999999,alpha,,\n",
        &config,
    )
    .await
    .unwrap_err();
    assert_eq!(refused.problems[0].line, 2);
    // The same partner is fine; both sources answer.
    load(
        &spool,
        "address,partner,valid_from,valid_to\n0225:999999999,gamma,,\n0225:111111111,alpha,,\n",
        &config,
    )
    .await
    .unwrap();
    let r = spool
        .route("0225:999999999", day("2026-01-01"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (r.partner.as_str(), r.source, r.line),
        ("gamma", DirectorySource::Config, None)
    );
    assert_eq!(
        partner(&spool, "0002:111111111", "2026-01-01")
            .await
            .as_deref(),
        Some("alpha")
    );
    assert_eq!(spool.directory_versions().await.unwrap().len(), 2);
}

async fn hundred_thousand_lines(db: Db) {
    let spool = db.spool("t").await;
    let mut csv = String::from("address,partner,valid_from,valid_to\n");
    for i in 0..100_000u64 {
        csv.push_str(&format!(
            "0225:{:09},{},,\n",
            100_000_000 + i,
            ["alpha", "beta"][(i % 2) as usize]
        ));
    }
    let loaded = load(&spool, &csv, &HashMap::new()).await.unwrap();
    assert_eq!(loaded.lines, 100_000);
    assert_eq!(
        partner(&spool, "0225:100099999", "2026-01-01")
            .await
            .as_deref(),
        Some("beta")
    );
    // Loaded again: still one copy.
    load(&spool, &csv, &HashMap::new()).await.unwrap();
    assert_eq!(spool.directory_versions().await.unwrap()[0].lines, 100_000);
}
