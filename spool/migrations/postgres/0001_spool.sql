-- quai spool schema, PostgreSQL flavour (same tables as the SQLite one).
-- Timestamps are TIMESTAMPTZ (UTC); money is NUMERIC, never float.

CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE flows (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner           TEXT NOT NULL REFERENCES partners(id),
    origin            TEXT NOT NULL CHECK (origin IN ('dropzone', 'sftp', 'as2', 'cli')),
    original_name     TEXT NOT NULL,
    size              BIGINT NOT NULL,
    sha256            TEXT NOT NULL,
    as2_message_id    TEXT,
    state             TEXT NOT NULL
        CHECK (state IN ('received', 'processing', 'processed', 'failed', 'duplicate')),
    received_at       TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_expires_at  TIMESTAMPTZ,
    duplicate_of      BIGINT REFERENCES flows(id) ON DELETE SET NULL,
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
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id            BIGINT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    doc_index          BIGINT NOT NULL,
    entry              TEXT NOT NULL,
    syntax             TEXT,
    profile            TEXT,
    seller_id          TEXT,
    number             TEXT,
    issue_date         DATE,
    type_code          TEXT,
    currency           TEXT,
    total_without_vat  NUMERIC,
    total_with_vat     NUMERIC,
    amount_due         NUMERIC,
    verdict            TEXT NOT NULL CHECK (verdict IN ('accepted', 'rejected')),
    duplicate          BOOLEAN NOT NULL DEFAULT FALSE,
    reasons            JSONB NOT NULL DEFAULT '[]',
    canonical          TEXT,
    stored_at          TIMESTAMPTZ NOT NULL,
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
    flow_id    BIGINT NOT NULL,
    doc_index  BIGINT NOT NULL,
    PRIMARY KEY (seller_id, number, year)
);
CREATE INDEX invoice_keys_holder ON invoice_keys(flow_id, doc_index);

CREATE TABLE acknowledgements (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id       BIGINT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL CHECK (kind IN ('integration_report', 'cdar', 'contrl', 'mdn')),
    destination   TEXT NOT NULL,
    file_name     TEXT NOT NULL,
    generated_at  TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    delivered_at  TIMESTAMPTZ,
    attempts      INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT
);
CREATE INDEX acknowledgements_flow ON acknowledgements(flow_id);
CREATE INDEX acknowledgements_pending ON acknowledgements(generated_at, id) WHERE delivered_at IS NULL;

CREATE TABLE digests (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner        TEXT NOT NULL REFERENCES partners(id),
    sent_at        TIMESTAMPTZ NOT NULL,
    recipients     TEXT NOT NULL,
    message_id     TEXT,
    invoice_count  INTEGER NOT NULL,
    instance       TEXT NOT NULL
);

-- Outbox of rejected invoices to tell the partner about, one row per invoice.
CREATE TABLE notifications (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id      BIGINT NOT NULL,
    doc_index    BIGINT NOT NULL,
    partner      TEXT NOT NULL REFERENCES partners(id),
    created_at   TIMESTAMPTZ NOT NULL,
    notified_at  TIMESTAMPTZ,
    digest_id    BIGINT REFERENCES digests(id),
    UNIQUE (flow_id, doc_index),
    FOREIGN KEY (flow_id, doc_index) REFERENCES invoices(flow_id, doc_index) ON DELETE CASCADE
);
CREATE INDEX notifications_pending ON notifications(partner, id) WHERE notified_at IS NULL;

CREATE TABLE job_runs (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job            TEXT NOT NULL,
    scheduled_for  TIMESTAMPTZ NOT NULL,
    started_at     TIMESTAMPTZ NOT NULL,
    finished_at    TIMESTAMPTZ,
    instance       TEXT NOT NULL,
    outcome        TEXT,
    detail         TEXT
);
CREATE INDEX job_runs_job ON job_runs(job, scheduled_for);

-- Append-only history of every state change.
CREATE TABLE events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          TIMESTAMPTZ NOT NULL,
    instance    TEXT NOT NULL,
    entity      TEXT NOT NULL,
    entity_id   BIGINT NOT NULL,
    from_state  TEXT,
    to_state    TEXT NOT NULL,
    reason      TEXT
);
CREATE INDEX events_entity ON events(entity, entity_id, id);
