-- The partner API (AFNOR Flow Service, issue 17): flows deposited over HTTP
-- (origin 'api'), answered through the API (destination kind 'api': the
-- acknowledgement becomes readable and is announced by webhook), partner
-- bearer tokens (only their SHA-256 is kept), the flow metadata the API
-- takes (tracking id unique per partner), webhook subscriptions and the
-- webhook posts owed, with their stored backoff.
--
-- SQLite cannot widen a CHECK constraint in place: `flows` and
-- `deliveries` are rebuilt (the documented twelve-step procedure; the
-- spool runs its migrations with foreign keys off, so dropping the old
-- tables cascades nothing, and the references of other tables name the
-- new ones once renamed).

CREATE TABLE flows_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    partner           TEXT NOT NULL REFERENCES partners(id),
    origin            TEXT NOT NULL CHECK (origin IN ('dropzone', 'sftp', 'as2', 'cli', 'api')),
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
INSERT INTO flows_new (id, partner, origin, original_name, size, sha256, as2_message_id, state,
                       received_at, updated_at, attempts, lease_owner, lease_expires_at,
                       duplicate_of, failure_code, failure_message)
SELECT id, partner, origin, original_name, size, sha256, as2_message_id, state,
       received_at, updated_at, attempts, lease_owner, lease_expires_at,
       duplicate_of, failure_code, failure_message
FROM flows ORDER BY id;
DROP TABLE flows;
ALTER TABLE flows_new RENAME TO flows;
CREATE UNIQUE INDEX flows_partner_sha256 ON flows(partner, sha256) WHERE state <> 'duplicate';
CREATE UNIQUE INDEX flows_partner_as2_message_id ON flows(partner, as2_message_id)
    WHERE as2_message_id IS NOT NULL AND state <> 'duplicate';
CREATE INDEX flows_claimable ON flows(received_at, id) WHERE state IN ('received', 'processing');
CREATE INDEX flows_partner_received ON flows(partner, received_at);
CREATE INDEX flows_sha256 ON flows(sha256);
CREATE INDEX flows_duplicate_of ON flows(duplicate_of) WHERE duplicate_of IS NOT NULL;
CREATE INDEX flows_match ON flows(partner, origin, original_name, size);

CREATE TABLE deliveries_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    item              TEXT NOT NULL CHECK (item IN ('ack', 'invoice', 'digest', 'status')),
    flow_id           INTEGER REFERENCES flows(id) ON DELETE CASCADE,
    ack_id            INTEGER UNIQUE REFERENCES acknowledgements(id) ON DELETE CASCADE,
    doc_index         INTEGER,
    digest_id         INTEGER REFERENCES digests(id) ON DELETE CASCADE,
    partner           TEXT NOT NULL,
    destination_kind  TEXT NOT NULL
        CHECK (destination_kind IN ('local_outbox', 'sftp_outbox', 'as2', 'as2_mdn', 'mail', 'api')),
    destination       TEXT NOT NULL,
    file_name         TEXT NOT NULL,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT NOT NULL,
    last_error        TEXT,
    delivered_at      TEXT,
    receipt           TEXT,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    status_id         INTEGER UNIQUE REFERENCES invoice_statuses(id) ON DELETE CASCADE,
    CHECK ((item = 'ack') = (ack_id IS NOT NULL)),
    CHECK (item <> 'invoice' OR (flow_id IS NOT NULL AND doc_index IS NOT NULL)),
    CHECK (item <> 'digest' OR digest_id IS NOT NULL),
    CHECK ((item = 'status') = (status_id IS NOT NULL)),
    CHECK (item <> 'status' OR (flow_id IS NOT NULL AND doc_index IS NOT NULL)),
    FOREIGN KEY (flow_id, doc_index) REFERENCES invoices(flow_id, doc_index) ON DELETE CASCADE
);
INSERT INTO deliveries_new SELECT id, item, flow_id, ack_id, doc_index, digest_id, partner,
       destination_kind, destination, file_name, state, created_at, updated_at, attempts,
       next_attempt_at, last_error, delivered_at, receipt, lease_owner, lease_expires_at,
       status_id
FROM deliveries ORDER BY id;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_invoice ON deliveries(flow_id, doc_index, partner) WHERE item = 'invoice';
CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_flow ON deliveries(flow_id);

-- A partner's bearer tokens: the SHA-256 (hex) of the secret, never the
-- secret itself, which `quai token create` prints once.
CREATE TABLE api_tokens (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    partner        TEXT NOT NULL,
    name           TEXT,
    secret_sha256  TEXT NOT NULL UNIQUE,
    created_at     TEXT NOT NULL,
    revoked_at     TEXT
);

-- What a deposit said about its flow (`flowInfo`); the tracking id is the
-- client's, unique among one partner's flows.
CREATE TABLE api_flows (
    flow_id          INTEGER PRIMARY KEY REFERENCES flows(id) ON DELETE CASCADE,
    partner          TEXT NOT NULL,
    tracking_id      TEXT,
    name             TEXT NOT NULL,
    flow_syntax      TEXT NOT NULL,
    flow_profile     TEXT,
    processing_rule  TEXT,
    sha256_given     INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX api_flows_tracking ON api_flows(partner, tracking_id) WHERE tracking_id IS NOT NULL;

-- Webhook subscriptions; the signing key must be kept to sign (it is
-- shown to its partner when created, never listed again).
CREATE TABLE api_webhooks (
    id              TEXT PRIMARY KEY,
    partner         TEXT NOT NULL,
    callback_url    TEXT NOT NULL,
    signing_key     TEXT NOT NULL,
    flow_types      TEXT NOT NULL DEFAULT '[]',
    flow_direction  TEXT,
    ack_status      TEXT,
    created_at      TEXT NOT NULL
);
CREATE INDEX api_webhooks_partner ON api_webhooks(partner, created_at);

-- One webhook post owed per (subscription, flow), with the stored backoff
-- and a lease, as deliveries have.
CREATE TABLE api_webhook_posts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id        TEXT NOT NULL REFERENCES api_webhooks(id) ON DELETE CASCADE,
    flow_id           INTEGER NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT NOT NULL,
    last_error        TEXT,
    delivered_at      TEXT,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    UNIQUE (webhook_id, flow_id)
);
CREATE INDEX api_webhook_posts_due ON api_webhook_posts(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX api_webhook_posts_flow ON api_webhook_posts(flow_id);
