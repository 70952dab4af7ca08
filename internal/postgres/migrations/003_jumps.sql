-- The last jump of this database's own vector entry, per row (domain.Jump):
-- where the first API write after a process start skipped the entry to the
-- process's floor. It describes this database's history only: sync never
-- copies it. 0/0: no jump yet.
ALTER TABLE products
    ADD COLUMN IF NOT EXISTS jump_from bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS jump_to bigint NOT NULL DEFAULT 0;
ALTER TABLE users
    ADD COLUMN IF NOT EXISTS jump_from bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS jump_to bigint NOT NULL DEFAULT 0;
