-- Flows `In` of the partner API (issue 17): what quai delivers to a partner
-- whose only channel is the API (an invoice routed to it, in its syntax, or
-- a lifecycle status relayed to it), readable with GET /v1/flows/in-<id>.
-- One row per delivered file name and partner: a delivery tried again after
-- a crash finds its row and adds nothing. The file itself is in the flow
-- store under its SHA-256, like every flow's.
CREATE TABLE api_inbox (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    partner      TEXT NOT NULL,
    name         TEXT NOT NULL,
    flow_syntax  TEXT NOT NULL,
    flow_type    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         INTEGER NOT NULL,
    created_at   TEXT NOT NULL,
    fetched_at   TEXT,
    UNIQUE (partner, name)
);
CREATE INDEX api_inbox_partner ON api_inbox(partner, id);

-- A webhook post now announces either a flow (`flow_id`, deposited through
-- the API) or a flow `In` (`inbox_id`).
CREATE TABLE api_webhook_posts_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id        TEXT NOT NULL REFERENCES api_webhooks(id) ON DELETE CASCADE,
    flow_id           INTEGER REFERENCES flows(id) ON DELETE CASCADE,
    inbox_id          INTEGER REFERENCES api_inbox(id) ON DELETE CASCADE,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TEXT NOT NULL,
    last_error        TEXT,
    delivered_at      TEXT,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    CHECK ((flow_id IS NULL) <> (inbox_id IS NULL)),
    UNIQUE (webhook_id, flow_id),
    UNIQUE (webhook_id, inbox_id)
);
INSERT INTO api_webhook_posts_new (id, webhook_id, flow_id, state, created_at, updated_at,
       attempts, next_attempt_at, last_error, delivered_at, lease_owner, lease_expires_at)
SELECT id, webhook_id, flow_id, state, created_at, updated_at, attempts, next_attempt_at,
       last_error, delivered_at, lease_owner, lease_expires_at
FROM api_webhook_posts ORDER BY id;
DROP TABLE api_webhook_posts;
ALTER TABLE api_webhook_posts_new RENAME TO api_webhook_posts;
CREATE INDEX api_webhook_posts_due ON api_webhook_posts(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX api_webhook_posts_flow ON api_webhook_posts(flow_id);
CREATE INDEX api_webhook_posts_inbox ON api_webhook_posts(inbox_id);
