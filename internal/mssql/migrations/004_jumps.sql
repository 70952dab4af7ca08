-- The last jump of this database's own vector entry, per row (domain.Jump):
-- where the first API write after a process start skipped the entry to the
-- process's floor. It describes this database's history only: sync never
-- copies it. 0/0: no jump yet.
IF COL_LENGTH(N'dbo.products', N'jump_from') IS NULL
    ALTER TABLE dbo.products ADD
        jump_from BIGINT NOT NULL CONSTRAINT products_jump_from_df DEFAULT 0,
        jump_to BIGINT NOT NULL CONSTRAINT products_jump_to_df DEFAULT 0;
IF COL_LENGTH(N'dbo.users', N'jump_from') IS NULL
    ALTER TABLE dbo.users ADD
        jump_from BIGINT NOT NULL CONSTRAINT users_jump_from_df DEFAULT 0,
        jump_to BIGINT NOT NULL CONSTRAINT users_jump_to_df DEFAULT 0;
