-- The partner API (AFNOR Flow Service, issue 17): flows deposited over HTTP
-- (origin 'api'), answered through the API (destination kind 'api': the
-- acknowledgement becomes readable and is announced by webhook), partner
-- bearer tokens (only their SHA-256 is kept), the flow metadata the API
-- takes (tracking id unique per partner), webhook subscriptions and the
-- webhook posts owed, with their stored backoff.

ALTER TABLE flows DROP CONSTRAINT flows_origin_check;
ALTER TABLE flows ADD CONSTRAINT flows_origin_check
    CHECK (origin IN ('dropzone', 'sftp', 'as2', 'cli', 'api'));
ALTER TABLE deliveries DROP CONSTRAINT deliveries_destination_kind_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_destination_kind_check
    CHECK (destination_kind IN ('local_outbox', 'sftp_outbox', 'as2', 'as2_mdn', 'mail', 'api'));

-- A partner's bearer tokens: the SHA-256 (hex) of the secret, never the
-- secret itself, which `quai token create` prints once.
CREATE TABLE api_tokens (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner        TEXT NOT NULL,
    name           TEXT,
    secret_sha256  TEXT NOT NULL UNIQUE,
    created_at     TIMESTAMPTZ NOT NULL,
    revoked_at     TIMESTAMPTZ
);

-- What a deposit said about its flow (`flowInfo`); the tracking id is the
-- client's, unique among one partner's flows.
CREATE TABLE api_flows (
    flow_id          BIGINT PRIMARY KEY REFERENCES flows(id) ON DELETE CASCADE,
    partner          TEXT NOT NULL,
    tracking_id      TEXT,
    name             TEXT NOT NULL,
    flow_syntax      TEXT NOT NULL,
    flow_profile     TEXT,
    processing_rule  TEXT,
    sha256_given     BOOLEAN NOT NULL DEFAULT FALSE
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
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX api_webhooks_partner ON api_webhooks(partner, created_at);

-- One webhook post owed per (subscription, flow), with the stored backoff
-- and a lease, as deliveries have.
CREATE TABLE api_webhook_posts (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id        TEXT NOT NULL REFERENCES api_webhooks(id) ON DELETE CASCADE,
    flow_id           BIGINT NOT NULL REFERENCES flows(id) ON DELETE CASCADE,
    state             TEXT NOT NULL CHECK (state IN ('pending', 'delivered')),
    created_at        TIMESTAMPTZ NOT NULL,
    updated_at        TIMESTAMPTZ NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   TIMESTAMPTZ NOT NULL,
    last_error        TEXT,
    delivered_at      TIMESTAMPTZ,
    lease_owner       TEXT,
    lease_expires_at  TIMESTAMPTZ,
    UNIQUE (webhook_id, flow_id)
);
CREATE INDEX api_webhook_posts_due ON api_webhook_posts(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX api_webhook_posts_flow ON api_webhook_posts(flow_id);
