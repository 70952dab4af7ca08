-- Restore detection (docs/merge.md): marks of this database's history, and
-- what this database holds about the other one's (its latest mark seen).
-- A restore brings both tables back with the rest: the marks added since
-- the backup are gone, which is how the other database finds out.
IF OBJECT_ID(N'dbo.sync_marks', N'U') IS NULL
CREATE TABLE dbo.sync_marks (
    n          BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT sync_marks_pk PRIMARY KEY,
    token      NVARCHAR(36) NOT NULL,
    created_at DATETIME2(3) NOT NULL CONSTRAINT sync_marks_created_df DEFAULT SYSUTCDATETIME()
);
IF OBJECT_ID(N'dbo.sync_peer', N'U') IS NULL
CREATE TABLE dbo.sync_peer (
    role         NVARCHAR(16) NOT NULL CONSTRAINT sync_peer_pk PRIMARY KEY,
    seen_n       BIGINT NOT NULL,
    seen_token   NVARCHAR(36) NOT NULL,
    regressed_at DATETIME2(3) NULL
);
