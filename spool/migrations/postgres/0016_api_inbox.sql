-- Flows `In` of the partner API (issue 17): what quai delivers to a partner
-- whose only channel is the API (an invoice routed to it, in its syntax, or
-- a lifecycle status relayed to it), readable with GET /v1/flows/in-<id>.
-- One row per delivered file name and partner: a delivery tried again after
-- a crash finds its row and adds nothing. The file itself is in the flow
-- store under its SHA-256, like every flow's.
CREATE TABLE api_inbox (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner      TEXT NOT NULL,
    name         TEXT NOT NULL,
    flow_syntax  TEXT NOT NULL,
    flow_type    TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    size         BIGINT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    fetched_at   TIMESTAMPTZ,
    UNIQUE (partner, name)
);
CREATE INDEX api_inbox_partner ON api_inbox(partner, id);

-- A webhook post now announces either a flow (`flow_id`, deposited through
-- the API) or a flow `In` (`inbox_id`).
ALTER TABLE api_webhook_posts ALTER COLUMN flow_id DROP NOT NULL;
ALTER TABLE api_webhook_posts ADD COLUMN inbox_id BIGINT REFERENCES api_inbox(id) ON DELETE CASCADE;
ALTER TABLE api_webhook_posts ADD CONSTRAINT api_webhook_posts_one_subject
    CHECK ((flow_id IS NULL) <> (inbox_id IS NULL));
ALTER TABLE api_webhook_posts ADD CONSTRAINT api_webhook_posts_webhook_inbox
    UNIQUE (webhook_id, inbox_id);
CREATE INDEX api_webhook_posts_inbox ON api_webhook_posts(inbox_id);
