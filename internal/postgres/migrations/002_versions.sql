-- Version vectors and per-field change times (concurrency is detected, not
-- guessed from timestamps), the normalised email key, and outbox entries
-- keyed by this side's vector entry instead of a time.
-- Existing rows start at vector 0/0 with every field changed at updated_at
-- (but see the outbox below): the first sync of a pair that differs merges
-- them field by field.
ALTER TABLE products
    ADD COLUMN IF NOT EXISTS ver_p bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS ver_f bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS name_at timestamptz(3) NULL,
    ADD COLUMN IF NOT EXISTS description_at timestamptz(3) NULL,
    ADD COLUMN IF NOT EXISTS price_at timestamptz(3) NULL;
UPDATE products SET name_at = updated_at, description_at = updated_at, price_at = updated_at WHERE name_at IS NULL;
ALTER TABLE products
    ALTER COLUMN name_at SET NOT NULL,
    ALTER COLUMN description_at SET NOT NULL,
    ALTER COLUMN price_at SET NOT NULL;

ALTER TABLE users
    ADD COLUMN IF NOT EXISTS ver_p bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS ver_f bigint NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS name_at timestamptz(3) NULL,
    ADD COLUMN IF NOT EXISTS email_at timestamptz(3) NULL,
    -- domain.EmailKey(email), filled by the migrator in Go (one function for
    -- both databases), then NOT NULL and uniquely indexed among live users.
    ADD COLUMN IF NOT EXISTS email_key varchar(254) COLLATE "C" NULL;
UPDATE users SET name_at = updated_at, email_at = updated_at WHERE name_at IS NULL;
ALTER TABLE users
    ALTER COLUMN name_at SET NOT NULL,
    ALTER COLUMN email_at SET NOT NULL;
DROP INDEX IF EXISTS users_email_live;

-- A row whose change still waits in this database's outbox starts with this
-- database's entry at 1 (ver_p on the primary, ver_f on the fallback), and
-- its waiting entries get counter 1: at 0/0 on both sides, the other side's
-- first write after the upgrade would dominate the row and drop that change
-- (a rename lost, a delete undone). The other entries get 0, acknowledged by
-- the next sync of their item.
UPDATE products SET {{own_ver}} = 1 WHERE id IN (SELECT entity_id FROM outbox WHERE entity = 'product');
UPDATE users SET {{own_ver}} = 1 WHERE id IN (SELECT entity_id FROM outbox WHERE entity = 'user');
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS counter bigint NOT NULL DEFAULT 0;
UPDATE outbox SET counter = 1;
DROP INDEX IF EXISTS outbox_entity;
ALTER TABLE outbox DROP COLUMN IF EXISTS version;
CREATE INDEX IF NOT EXISTS outbox_entity ON outbox (entity, entity_id, counter);
