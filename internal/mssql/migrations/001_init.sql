-- Batches are separated by lines holding only GO (split by the migrator).
-- {{id_start}} is 1 on the primary and 2 on the fallback: ids never collide.
-- Filtered indexes need these (go-mssqldb sessions have them on already;
-- stated so the script also works from sqlcmd).
SET QUOTED_IDENTIFIER ON;
SET ANSI_NULLS ON;
GO
-- Sequences, not IDENTITY: sync inserts explicit ids, which must not move them.
IF OBJECT_ID(N'dbo.products_id_seq', N'SO') IS NULL
    EXEC (N'CREATE SEQUENCE dbo.products_id_seq AS BIGINT START WITH {{id_start}} INCREMENT BY 2 MINVALUE 1 NO CYCLE');
IF OBJECT_ID(N'dbo.users_id_seq', N'SO') IS NULL
    EXEC (N'CREATE SEQUENCE dbo.users_id_seq AS BIGINT START WITH {{id_start}} INCREMENT BY 2 MINVALUE 1 NO CYCLE');
GO
IF OBJECT_ID(N'dbo.products', N'U') IS NULL
CREATE TABLE dbo.products (
    id          BIGINT NOT NULL CONSTRAINT products_pk PRIMARY KEY,
    name        NVARCHAR(255) NOT NULL,
    description NVARCHAR(4000) NOT NULL CONSTRAINT products_description_df DEFAULT N'',
    price       DECIMAL(10,2) NOT NULL,
    created_at  DATETIME2(3) NOT NULL,
    updated_at  DATETIME2(3) NOT NULL,
    deleted_at  DATETIME2(3) NULL
);
GO
-- A case-insensitive collation on email makes the unique index ignore case,
-- whatever the database's default collation is.
IF OBJECT_ID(N'dbo.users', N'U') IS NULL
CREATE TABLE dbo.users (
    id          BIGINT NOT NULL CONSTRAINT users_pk PRIMARY KEY,
    name        NVARCHAR(100) NOT NULL,
    email       NVARCHAR(254) COLLATE Latin1_General_100_CI_AS NOT NULL,
    created_at  DATETIME2(3) NOT NULL,
    updated_at  DATETIME2(3) NOT NULL,
    deleted_at  DATETIME2(3) NULL
);
GO
-- Email is unique among live users; a tombstone frees it.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'users_email_live' AND object_id = OBJECT_ID(N'dbo.users'))
    CREATE UNIQUE INDEX users_email_live ON dbo.users (email) WHERE deleted_at IS NULL;
GO
IF OBJECT_ID(N'dbo.outbox', N'U') IS NULL
CREATE TABLE dbo.outbox (
    seq        BIGINT IDENTITY(1,1) NOT NULL CONSTRAINT outbox_pk PRIMARY KEY,
    entity     VARCHAR(16) NOT NULL,
    entity_id  BIGINT NOT NULL,
    version    DATETIME2(3) NOT NULL,
    created_at DATETIME2(3) NOT NULL,
    sent_at    DATETIME2(3) NULL
);
GO
-- MarkOutboxSent and AckOutbox find a row's entries by entity and id.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'outbox_entity' AND object_id = OBJECT_ID(N'dbo.outbox'))
    CREATE INDEX outbox_entity ON dbo.outbox (entity, entity_id, version);
-- PendingOutbox: never sent and old enough, or sent too long ago.
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'outbox_unsent' AND object_id = OBJECT_ID(N'dbo.outbox'))
    CREATE INDEX outbox_unsent ON dbo.outbox (created_at) WHERE sent_at IS NULL;
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'outbox_sent' AND object_id = OBJECT_ID(N'dbo.outbox'))
    CREATE INDEX outbox_sent ON dbo.outbox (sent_at) WHERE sent_at IS NOT NULL;
