-- invoices.flow_id: the foreign key to flows is replaced by a trigger that
-- keeps its ON DELETE CASCADE. Why: the key's check runs once per inserted
-- invoice row (an RI trigger executing `SELECT ... FOR KEY SHARE` on flows),
-- about a tenth of the server's CPU while invoices are stored; and it
-- checks nothing the spool does not already guarantee: every invoice write
-- (`store_invoices`, `finish_flow`) first locks its flow row and checks the
-- lease, so the flow exists and cannot be deleted before the commit (purge
-- only deletes flows in a terminal state, after taking the same row lock).
ALTER TABLE invoices DROP CONSTRAINT IF EXISTS invoices_flow_id_fkey;

CREATE FUNCTION quai_delete_flow_invoices() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM invoices WHERE flow_id = OLD.id;
    RETURN OLD;
END
$$;

CREATE TRIGGER flows_delete_invoices BEFORE DELETE ON flows
    FOR EACH ROW EXECUTE FUNCTION quai_delete_flow_invoices();
