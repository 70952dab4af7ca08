-- {{id_start}} is 1 on the primary and 2 on the fallback: ids never collide.
-- Rows get ids from these sequences only in the API's Create; sync inserts
-- explicit ids, which never move a sequence.
CREATE SEQUENCE IF NOT EXISTS products_id_seq AS bigint INCREMENT 2 MINVALUE 1 START {{id_start}};
CREATE SEQUENCE IF NOT EXISTS users_id_seq AS bigint INCREMENT 2 MINVALUE 1 START {{id_start}};

CREATE TABLE IF NOT EXISTS products (
    id          bigint PRIMARY KEY,
    name        varchar(255) NOT NULL,
    description varchar(4000) NOT NULL DEFAULT '',
    price       numeric(10,2) NOT NULL,
    created_at  timestamptz(3) NOT NULL,
    updated_at  timestamptz(3) NOT NULL,
    deleted_at  timestamptz(3) NULL
);

CREATE TABLE IF NOT EXISTS users (
    id          bigint PRIMARY KEY,
    name        varchar(100) NOT NULL,
    email       varchar(254) NOT NULL,
    created_at  timestamptz(3) NOT NULL,
    updated_at  timestamptz(3) NOT NULL,
    deleted_at  timestamptz(3) NULL
);

-- Email is unique among live users, ignoring case; a tombstone frees it.
CREATE UNIQUE INDEX IF NOT EXISTS users_email_live ON users (lower(email)) WHERE deleted_at IS NULL;

CREATE TABLE IF NOT EXISTS outbox (
    seq        bigserial PRIMARY KEY,
    entity     text NOT NULL,
    entity_id  bigint NOT NULL,
    version    timestamptz(3) NOT NULL,
    created_at timestamptz(3) NOT NULL,
    sent_at    timestamptz(3) NULL
);

-- MarkOutboxSent and AckOutbox find a row's entries by entity and id.
CREATE INDEX IF NOT EXISTS outbox_entity ON outbox (entity, entity_id, version);
-- PendingOutbox: never sent and old enough, or sent too long ago.
CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;
CREATE INDEX IF NOT EXISTS outbox_sent ON outbox (sent_at) WHERE sent_at IS NOT NULL;
