-- The exchange (issue 15): each accepted invoice is routed to the partner
-- that receives for its buyer's address; `recipient` is that partner
-- (NULL for rejected invoices and for those accepted before routing
-- existed). Set in the transaction that finishes the flow, together with
-- the invoice's delivery row. The index serves `quai invoices --partner`
-- and the per-recipient counts of the status page. See spool/src/exchange.rs.
ALTER TABLE invoices ADD COLUMN recipient TEXT;
CREATE INDEX invoices_recipient ON invoices (recipient, flow_id) WHERE recipient IS NOT NULL;
