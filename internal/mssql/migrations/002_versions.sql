-- Version vectors and per-field change times (concurrency is detected, not
-- guessed from timestamps), the normalised email key compared byte for byte
-- (a binary collation: the CI_AS email collation is also width- and
-- kana-insensitive and ignores trailing spaces, PostgreSQL is not), and
-- outbox entries keyed by this side's vector entry instead of a time.
-- Same meaning as postgres/migrations/002_versions.sql.
SET QUOTED_IDENTIFIER ON;
SET ANSI_NULLS ON;
GO
IF COL_LENGTH(N'dbo.products', N'ver_p') IS NULL
    ALTER TABLE dbo.products ADD
        ver_p BIGINT NOT NULL CONSTRAINT products_ver_p_df DEFAULT 0,
        ver_f BIGINT NOT NULL CONSTRAINT products_ver_f_df DEFAULT 0,
        name_at DATETIME2(3) NULL,
        description_at DATETIME2(3) NULL,
        price_at DATETIME2(3) NULL;
GO
UPDATE dbo.products SET name_at = updated_at, description_at = updated_at, price_at = updated_at WHERE name_at IS NULL;
ALTER TABLE dbo.products ALTER COLUMN name_at DATETIME2(3) NOT NULL;
ALTER TABLE dbo.products ALTER COLUMN description_at DATETIME2(3) NOT NULL;
ALTER TABLE dbo.products ALTER COLUMN price_at DATETIME2(3) NOT NULL;
GO
IF COL_LENGTH(N'dbo.users', N'ver_p') IS NULL
    ALTER TABLE dbo.users ADD
        ver_p BIGINT NOT NULL CONSTRAINT users_ver_p_df DEFAULT 0,
        ver_f BIGINT NOT NULL CONSTRAINT users_ver_f_df DEFAULT 0,
        name_at DATETIME2(3) NULL,
        email_at DATETIME2(3) NULL,
        -- domain.EmailKey(email), filled by the migrator in Go, then NOT NULL
        -- and uniquely indexed among live users.
        email_key NVARCHAR(254) COLLATE Latin1_General_100_BIN2 NULL;
GO
UPDATE dbo.users SET name_at = updated_at, email_at = updated_at WHERE name_at IS NULL;
ALTER TABLE dbo.users ALTER COLUMN name_at DATETIME2(3) NOT NULL;
ALTER TABLE dbo.users ALTER COLUMN email_at DATETIME2(3) NOT NULL;
IF EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'users_email_live' AND object_id = OBJECT_ID(N'dbo.users'))
    DROP INDEX users_email_live ON dbo.users;
GO
-- A row whose change still waits in this database's outbox starts with this
-- database's entry at 1 (ver_p on the primary, ver_f on the fallback), and
-- its waiting entries get counter 1: at 0/0 on both sides, the other side's
-- first write after the upgrade would dominate the row and drop that change
-- (a rename lost, a delete undone). The other entries get 0, acknowledged by
-- the next sync of their item.
IF COL_LENGTH(N'dbo.outbox', N'counter') IS NULL
    ALTER TABLE dbo.outbox ADD counter BIGINT NOT NULL CONSTRAINT outbox_counter_df DEFAULT 0;
GO
UPDATE dbo.products SET {{own_ver}} = 1 WHERE id IN (SELECT entity_id FROM dbo.outbox WHERE entity = 'product');
UPDATE dbo.users SET {{own_ver}} = 1 WHERE id IN (SELECT entity_id FROM dbo.outbox WHERE entity = 'user');
UPDATE dbo.outbox SET counter = 1;
GO
IF EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'outbox_entity' AND object_id = OBJECT_ID(N'dbo.outbox'))
    DROP INDEX outbox_entity ON dbo.outbox;
IF COL_LENGTH(N'dbo.outbox', N'version') IS NOT NULL
    ALTER TABLE dbo.outbox DROP COLUMN version;
GO
CREATE INDEX outbox_entity ON dbo.outbox (entity, entity_id, counter);
