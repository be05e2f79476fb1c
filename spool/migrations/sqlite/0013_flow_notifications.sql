-- Outbox of flows refused whole (IRR_SYNTAX, IRR_TYPE_F, IRR_VIDE_F...) to
-- tell the partner about in its digest, one row per flow: the twin of
-- `notifications` (one row per rejected invoice), with the same states
-- (pending until a digest listing it is recorded, then notified, final).
-- Flows that failed before this migration are not back-filled: their
-- partners were told by their integration reports, and a first digest
-- listing old failures would be noise.
CREATE TABLE flow_notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id      INTEGER NOT NULL UNIQUE REFERENCES flows(id) ON DELETE CASCADE,
    partner      TEXT NOT NULL REFERENCES partners(id),
    created_at   TEXT NOT NULL,
    notified_at  TEXT,
    digest_id    INTEGER REFERENCES digests(id)
);
CREATE INDEX flow_notifications_pending ON flow_notifications(partner, id) WHERE notified_at IS NULL;

-- How many refused flows a digest listed (invoice_count counts the rejects).
ALTER TABLE digests ADD COLUMN flow_count INTEGER NOT NULL DEFAULT 0;
