-- The canonical JSON of new invoice rows is stored compressed (a zstd frame
-- with a dictionary, see spool/src/rows.rs `canonical`) in canonical_z;
-- `canonical` keeps the plain text of rows written before this migration.
ALTER TABLE invoices ADD COLUMN canonical_z BLOB;
