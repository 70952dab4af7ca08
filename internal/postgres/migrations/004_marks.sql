-- Restore detection (docs/merge.md): marks of this database's history, and
-- what this database holds about the other one's (its latest mark seen).
-- A restore brings both tables back with the rest: the marks added since
-- the backup are gone, which is how the other database finds out.
CREATE TABLE IF NOT EXISTS sync_marks (
    n          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token      varchar(36) NOT NULL,
    created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS sync_peer (
    role         varchar(16) PRIMARY KEY,
    seen_n       bigint NOT NULL,
    seen_token   varchar(36) NOT NULL,
    regressed_at timestamptz(3) NULL
);
