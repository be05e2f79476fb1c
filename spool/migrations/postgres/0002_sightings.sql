-- Files seen at the edge (drop-zone scans, SFTP listings, AS2 requests),
-- whether or not they were ingested: reconciliation compares them with the
-- flows registered. One row per (partner, origin, name, size).
CREATE TABLE sightings (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner     TEXT NOT NULL,
    origin      TEXT NOT NULL CHECK (origin IN ('dropzone', 'sftp', 'as2', 'cli')),
    name        TEXT NOT NULL,
    size        BIGINT NOT NULL,
    first_seen  TIMESTAMPTZ NOT NULL,
    last_seen   TIMESTAMPTZ NOT NULL,
    times_seen  INTEGER NOT NULL DEFAULT 1,
    UNIQUE (partner, origin, name, size)
);
CREATE INDEX sightings_first_seen ON sightings(first_seen);
CREATE INDEX flows_match ON flows(partner, origin, original_name, size);
