-- quai spool schema, SQLite flavour.
-- Timestamps are UTC, stored as RFC 3339 text written by the application
-- (same format everywhere, so text order is time order).
-- Money is stored as decimal TEXT, never REAL.

CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL
);

CREATE TABLE flows (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    partner           TEXT NOT NULL REFERENCES partners(id),
    origin            TEXT NOT NULL CHECK (origin IN ('dropzone', 'sftp', 'as2', 'cli')),
    original_name     TEXT NOT NULL,
    size              INTEGER NOT NULL,
    sha256            TEXT NOT NULL,
    as2_message_id    TEXT,
    state             TEXT NOT NULL
        CHECK (state IN ('received', 'processing', 'processed', 'failed', 'duplicate')),
    received_at       TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    duplicate_of      INTEGER REFERENCES flows(id) ON DELETE SET NULL,
    failure_code      TEXT,
    failure_message   TEXT
);

-- A flow is identified by partner + hash, and by its AS2 Message-ID; duplicates
-- are recorded as rows of their own, so the uniqueness only holds among the others.
CREATE UNIQUE INDEX flows_partner_sha256 ON flows(partner, sha256) WHERE state <> 'duplicate';
CREATE UNIQUE INDEX flows_as2_message_id ON flows(as2_message_id)
    WHERE as2_message_id IS NOT NULL AND state <> 'duplicate';
-- Work queue: claimable flows, oldest first.
CREATE INDEX flows_claimable ON flows(received_at, id) WHERE state IN ('received', 'processing');
CREATE INDEX flows_partner_received ON flows(partner, received_at);
CREATE INDEX flows_sha256 ON flows(sha256);
CREATE INDEX flows_duplicate_of ON flows(duplicate_of) WHERE duplicate_of IS NOT NULL;

CREATE TABLE invoices (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id            INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    doc_index          INTEGER NOT NULL,
    entry              TEXT NOT NULL,
    syntax             TEXT,
    profile            TEXT,
    seller_id          TEXT,
    number             TEXT,
    issue_date         TEXT,
    type_code          TEXT,
    currency           TEXT,
    total_without_vat  TEXT,
    total_with_vat     TEXT,
    amount_due         TEXT,
    verdict            TEXT NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
    duplicate          INTEGER NOT NULL DEFAULT 0,
    reasons            TEXT NOT NULL DEFAULT '[]',
    canonical          TEXT,
    stored_at          TEXT NOT NULL,
    UNIQUE (flow_id, doc_index)
);

-- Duplicate detection: (seller, number, year) is held by the accepted invoice
-- (flow_id, doc_index) that claimed it first. No foreign key to invoices: the
-- key is claimed before the invoice row is upserted, and a deferred check
-- would cost one lookup per invoice at every commit; the spool deletes keys
-- itself wherever it deletes invoices (finish_flow leftovers, purge).
CREATE TABLE invoice_keys (
    seller_id  TEXT NOT NULL,
    number     TEXT NOT NULL,
    year       INTEGER NOT NULL,
    flow_id    INTEGER NOT NULL,
    doc_index  INTEGER NOT NULL,
    PRIMARY KEY (seller_id, number, year)
);
CREATE INDEX invoice_keys_holder ON invoice_keys(flow_id, doc_index);

CREATE TABLE acknowledgements (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id       INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('integration_report', 'cdar', 'contrl', 'mdn')),
    destination   TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    generated_at  TEXT NOT NULL,
    updated_at    TEXT NOT NULL,
    delivered_at  TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX acknowledgements_flow ON acknowledgements(flow_id);
CREATE INDEX acknowledgements_pending ON acknowledgements(generated_at, id) WHERE delivered_at IS NULL;

CREATE TABLE digests (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    partner        TEXT NOT NULL REFERENCES partners(id),
    sent_at        TEXT NOT NULL,
    recipients     TEXT NOT NULL,
    message_id     TEXT,
    invoice_count  INTEGER NOT NULL,
    instance       TEXT NOT NULL
);

-- Outbox of rejected invoices to tell the partner about, one row per invoice.
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id      INTEGER NOT NULL,
    doc_index    INTEGER NOT NULL,
    partner      TEXT NOT NULL REFERENCES partners(id),
    created_at   TEXT NOT NULL,
    notified_at  TEXT,
    digest_id    INTEGER REFERENCES digests(id),
    UNIQUE (flow_id, doc_index),
    FOREIGN KEY (flow_id, doc_index) REFERENCES invoices(flow_id, doc_index) ON DELETE CASCADE
);
CREATE INDEX notifications_pending ON notifications(partner, id) WHERE notified_at IS NULL;

CREATE TABLE job_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    job            TEXT NOT NULL,
    scheduled_for  TEXT NOT NULL,
    started_at     TEXT NOT NULL,
    finished_at    TEXT,
    instance       TEXT NOT NULL,
    outcome        TEXT,
    detail         TEXT
);
CREATE INDEX job_runs_job ON job_runs(job, scheduled_for);

-- Cron job mutual exclusion on SQLite (PostgreSQL uses advisory locks).
CREATE TABLE job_locks (
    job         TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    token       TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

-- Append-only history of every state change.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          TEXT NOT NULL,
    instance    TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   INTEGER NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT
);
CREATE INDEX events_entity ON events(entity, entity_id, id);
