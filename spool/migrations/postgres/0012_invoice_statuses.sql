-- The lifecycle-status history of each invoice (issue 15, see
-- spool/src/lifecycle.rs): one row per status after the implicit first one
-- (the verdict: 200 Déposée or 213 Rejetée), `seq` 1, 2, ... per invoice.
-- `reasons` and `amounts` are JSON arrays as text ([{code, text}], [{kind,
-- amount, currency, vat_rate}], amounts as decimal strings); `issuer` is
-- the side that emitted it, `from_partner` the partner who sent it (NULL
-- for quai's own), `inbound_flow_id` the status flow (a partner's CDAR) it
-- came in.
CREATE TABLE invoice_statuses (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    flow_id          BIGINT NOT NULL,
    doc_index        BIGINT NOT NULL,
    seq              BIGINT NOT NULL CHECK (seq > 0),
    code             INTEGER NOT NULL CHECK (code BETWEEN 200 AND 213),
    reasons          TEXT NOT NULL DEFAULT '[]',
    amounts          TEXT NOT NULL DEFAULT '[]',
    issuer           TEXT NOT NULL CHECK (issuer IN ('platform', 'recipient', 'supplier')),
    from_partner     TEXT,
    inbound_flow_id  BIGINT REFERENCES flows(id) ON DELETE SET NULL,
    at               TIMESTAMPTZ NOT NULL,
    recorded_at      TIMESTAMPTZ NOT NULL,
    UNIQUE (flow_id, doc_index, seq),
    FOREIGN KEY (flow_id, doc_index) REFERENCES invoices(flow_id, doc_index) ON DELETE CASCADE
);
CREATE INDEX invoice_statuses_code ON invoice_statuses(code, recorded_at);
CREATE INDEX invoice_statuses_inbound ON invoice_statuses(inbound_flow_id)
    WHERE inbound_flow_id IS NOT NULL;

-- Matching a status to its invoice: by number and year, then seller and date.
CREATE INDEX invoice_keys_number ON invoice_keys(number, year);

-- A status owes its CDAR relay to the other party as a delivery row of
-- item 'status'.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_item_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_item_check
    CHECK (item IN ('ack', 'invoice', 'digest', 'status'));
ALTER TABLE deliveries ADD COLUMN status_id BIGINT UNIQUE
    REFERENCES invoice_statuses(id) ON DELETE CASCADE;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_status_check
    CHECK ((item = 'status') = (status_id IS NOT NULL)
           AND (item <> 'status' OR (flow_id IS NOT NULL AND doc_index IS NOT NULL)));
