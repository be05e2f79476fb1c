-- The lifecycle-status history of each invoice (issue 15, see
-- spool/src/lifecycle.rs): one row per status after the implicit first one
-- (the verdict: 200 Déposée or 213 Rejetée), `seq` 1, 2, ... per invoice.
-- `reasons` and `amounts` are JSON arrays ([{code, text}], [{kind, amount,
-- currency, vat_rate}], amounts as decimal strings); `issuer` is the side
-- that emitted it, `from_partner` the partner who sent it (NULL for quai's
-- own), `inbound_flow_id` the status flow (a partner's CDAR) it came in.
CREATE TABLE invoice_statuses (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    flow_id          INTEGER NOT NULL,
    doc_index        INTEGER NOT NULL,
    seq              INTEGER NOT NULL CHECK (seq > 0),
    code             INTEGER NOT NULL CHECK (code BETWEEN 200 AND 213),
    reasons          TEXT NOT NULL DEFAULT '[]',
    amounts          TEXT NOT NULL DEFAULT '[]',
    issuer           TEXT NOT NULL CHECK (issuer IN ('platform', 'recipient', 'supplier')),
    from_partner     TEXT,
    inbound_flow_id  INTEGER REFERENCES flows(id) ON DELETE SET NULL,
    at               TEXT NOT NULL,
    recorded_at      TEXT NOT NULL,
    UNIQUE (flow_id, doc_index, seq),
    FOREIGN KEY (flow_id, doc_index) REFERENCES invoices(flow_id, doc_index) ON DELETE CASCADE
);
CREATE INDEX invoice_statuses_code ON invoice_statuses(code, recorded_at);
CREATE INDEX invoice_statuses_inbound ON invoice_statuses(inbound_flow_id)
    WHERE inbound_flow_id IS NOT NULL;

-- Matching a status to its invoice: by number and year, then seller and date.
CREATE INDEX invoice_keys_number ON invoice_keys(number, year);

-- A status owes its CDAR relay to the other party as a delivery row of
-- item 'status'. SQLite cannot change a CHECK constraint in place, so
-- the table is rebuilt with the same rows (nothing references it).
CREATE TABLE deliveries_new (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    item              TEXT NOT NULL CHECK (item IN ('ack', 'invoice', 'digest', 'status')),
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
    status_id         INTEGER UNIQUE REFERENCES invoice_statuses(id) ON DELETE CASCADE,
    CHECK ((item = 'ack') = (ack_id IS NOT NULL)),
    CHECK (item <> 'invoice' OR (flow_id IS NOT NULL AND doc_index IS NOT NULL)),
    CHECK (item <> 'digest' OR digest_id IS NOT NULL),
    CHECK ((item = 'status') = (status_id IS NOT NULL)),
    CHECK (item <> 'status' OR (flow_id IS NOT NULL AND doc_index IS NOT NULL)),
    FOREIGN KEY (flow_id, doc_index) REFERENCES invoices(flow_id, doc_index) ON DELETE CASCADE
);
INSERT INTO deliveries_new (id, item, flow_id, ack_id, doc_index, digest_id, partner,
                            destination_kind, destination, file_name, state, created_at,
                            updated_at, attempts, next_attempt_at, last_error, delivered_at,
                            receipt, lease_owner, lease_expires_at)
SELECT id, item, flow_id, ack_id, doc_index, digest_id, partner, destination_kind, destination,
       file_name, state, created_at, updated_at, attempts, next_attempt_at, last_error,
       delivered_at, receipt, lease_owner, lease_expires_at
FROM deliveries;
DROP TABLE deliveries;
ALTER TABLE deliveries_new RENAME TO deliveries;
CREATE UNIQUE INDEX deliveries_invoice ON deliveries(flow_id, doc_index, partner) WHERE item = 'invoice';
CREATE INDEX deliveries_due ON deliveries(next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX deliveries_flow ON deliveries(flow_id);
