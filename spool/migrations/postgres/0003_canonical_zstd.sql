-- The canonical JSON of new invoice rows is stored compressed (a zstd frame
-- with a dictionary, see spool/src/rows.rs `canonical`) in canonical_z;
-- `canonical` keeps the plain text of rows written before this migration.
-- The frames are small (a few hundred bytes) and already compressed:
-- EXTERNAL keeps PostgreSQL from trying pglz on them again.
ALTER TABLE invoices ADD COLUMN canonical_z bytea;
ALTER TABLE invoices ALTER COLUMN canonical_z SET STORAGE EXTERNAL;
