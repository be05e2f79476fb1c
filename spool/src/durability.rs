//! How durable a write transaction's commit must be: a leaf shared by the
//! SQLite backend and every module whose steps choose a level.

/// How durable a write transaction's commit must be.
#[derive(Clone, Copy)]
pub(crate) enum Durability {
    /// fsync the WAL at commit: registrations (the source is deleted right
    /// after), finished flows (their answers go out right after), outbox
    /// and acknowledgement marks.
    Full,
    /// No fsync at commit: claims, invoice batches, abandons. A power loss
    /// can only drop a suffix of such commits (the next `Full` commit syncs
    /// everything before it), and losing them only means a flow is
    /// processed again, which is idempotent.
    Relaxed,
}

impl Durability {
    /// `BEGIN` statement that also sets the level for this commit (executed
    /// as one script by SQLite).
    pub(crate) fn begin(self) -> &'static str {
        match self {
            Durability::Full => "PRAGMA synchronous = FULL; BEGIN IMMEDIATE",
            Durability::Relaxed => "PRAGMA synchronous = NORMAL; BEGIN IMMEDIATE",
        }
    }
}
