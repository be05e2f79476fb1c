-- The recipient directory (issue 15): which partner receives invoices for
-- an electronic address, valid when. Each load (the `[directory] file`
-- export, or the `[[partner]] addresses` of the configuration) is one
-- version; lines are loaded into a new `loading` version, then one short
-- transaction makes it `current` and retires the previous one, whose lines
-- are deleted afterwards. Lookups read only current versions, so a reader
-- never sees half a file. See spool/src/directory.rs.
CREATE TABLE directory_versions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    source      TEXT NOT NULL CHECK (source IN ('file', 'config')),
    state       TEXT NOT NULL CHECK (state IN ('loading', 'current', 'retired')),
    stamp       TEXT,
    lines       INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX directory_versions_current ON directory_versions (source)
    WHERE state = 'current';

-- `line`: the 1-based line in the CSV file (0 for a configuration address).
CREATE TABLE directory_lines (
    version     INTEGER NOT NULL,
    address     TEXT NOT NULL,
    partner     TEXT NOT NULL,
    valid_from  TEXT,
    valid_to    TEXT,
    line        INTEGER NOT NULL,
    PRIMARY KEY (version, address, line)
) WITHOUT ROWID;
