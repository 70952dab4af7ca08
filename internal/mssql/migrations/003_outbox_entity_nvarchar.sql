-- go-mssqldb sends every Go string as NVARCHAR. Compared with a VARCHAR column
-- under a SQL collation, the column side is converted, so the index on
-- outbox (entity, entity_id, ...) could not be sought and every
-- MarkOutboxSent / AckOutbox scanned the outbox. Every character column is
-- NVARCHAR now (TestColumnTypesMatchParameters).
IF EXISTS (SELECT 1 FROM sys.columns
           WHERE object_id = OBJECT_ID(N'dbo.outbox') AND name = N'entity' AND TYPE_NAME(system_type_id) = N'varchar')
BEGIN
    IF EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'outbox_entity' AND object_id = OBJECT_ID(N'dbo.outbox'))
        DROP INDEX outbox_entity ON dbo.outbox;
    ALTER TABLE dbo.outbox ALTER COLUMN entity NVARCHAR(16) NOT NULL;
END
GO
IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'outbox_entity' AND object_id = OBJECT_ID(N'dbo.outbox'))
    CREATE INDEX outbox_entity ON dbo.outbox (entity, entity_id, counter);
