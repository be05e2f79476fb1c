-- Everything quai sends (acknowledgements now; delivered invoices and
-- digests later) is one delivery row: what (item and its keys), to whom
-- (`partner`, the recipient) and where (`destination_kind` +
-- `destination`: the partner for its local outbox, SFTP outbox or AS2
-- endpoint, the URL of an asynchronous MDN, a mail address), with the
-- state of its sending. The retry backoff is computed from `attempts` and
-- stored in `next_attempt_at`, so it survives a restart and is shared by
-- every instance; a lease (`lease_owner`, `lease_expires_at`) keeps two
-- instances from sending the same row at once. See spool/src/deliveries.rs.
CREATE TABLE deliveries (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    item              TEXT NOT NULL CHECK (item IN ('ack', 'invoice', 'digest')),
    flow_id           INTEGER REFERENCES flows(id) ON DELETE CASCADE,
    ack_id            INTEGER UNIQUE REFERENCES acknowledgements(id) ON DELETE CASCADE,
    doc_index         INTEGER,
    digest_id         INTEGER REFERENCES digests(id) ON DELETE CASCADE,
    partner           TEXT NOT NULL,
    destination_kind  TEXT NOT NULL
        CHECK (destination_kind IN ('local_outbox', 'sftp_outbox', 'as2', 'as2_mdn', 'mail')),
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
    CHECK ((item = 'ack') = (ack_id IS NOT NULL)),
    CHECK (item <> 'invoice' OR (flow_id IS NOT NULL AND doc_index IS NOT NULL)),
    CHECK (item <> 'digest' OR digest_id IS NOT NULL),
    FOREIGN KEY (flow_id, doc_index) REFERENCES invoices(flow_id, doc_index) ON DELETE CASCADE
);
-- One delivery of an invoice per recipient.
CREATE UNIQUE INDEX deliveries_invoice ON deliveries(flow_id, doc_index, partner) WHERE item = 'invoice';
CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_flow ON deliveries(flow_id);

-- Existing acknowledgements keep their history: where they went (the old
-- `destination` named the channel; an MDN's was its URL), attempts, last
-- error, delivery time. Pending ones are due at once.
INSERT INTO deliveries (item, flow_id, ack_id, partner, destination_kind, destination, file_name,
                        state, created_at, updated_at, attempts, next_attempt_at, last_error, delivered_at)
SELECT 'ack', a.flow_id, a.id, f.partner,
       CASE WHEN a.kind = 'mdn' THEN 'as2_mdn'
            WHEN a.destination = 'sftp' THEN 'sftp_outbox'
            WHEN a.destination = 'as2' THEN 'as2'
            ELSE 'local_outbox' END,
       CASE WHEN a.kind = 'mdn' THEN a.destination ELSE f.partner END,
       a.file_name,
       CASE WHEN a.delivered_at IS NULL THEN 'pending' ELSE 'delivered' END,
       a.generated_at, a.updated_at, a.attempts, a.updated_at, a.last_error, a.delivered_at
FROM acknowledgements a JOIN flows f ON f.id = a.flow_id
ORDER BY a.id;

-- The delivery row is now the one place for these.
DROP INDEX acknowledgements_pending;
ALTER TABLE acknowledgements DROP COLUMN destination;
ALTER TABLE acknowledgements DROP COLUMN delivered_at;
ALTER TABLE acknowledgements DROP COLUMN attempts;
ALTER TABLE acknowledgements DROP COLUMN last_error;
