package mssql

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

func (db *DB) PurgeCandidates(ctx context.Context, e domain.Entity, after int64, before time.Time, limit int) ([]store.Tombstone, error) {
	t, err := table(e)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, db.db, "list purge candidates", purgeCandidatesSQL(t), func(s scanner) (store.Tombstone, error) {
		var ts store.Tombstone
		return ts, s.Scan(&ts.ID, &ts.Ver.P, &ts.Ver.F)
	}, after, dt(before), str(string(e)), int64(limitOf(limit)))
}

// purgeCandidatesSQL: @p1 after, @p2 before, @p3 entity, @p4 limit.
func purgeCandidatesSQL(t string) string {
	return `SELECT TOP (@p4) t.id, t.ver_p, t.ver_f FROM ` + t + ` AS t
		WHERE t.id > @p1 AND t.deleted_at IS NOT NULL AND t.deleted_at < @p2
		AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WHERE o.entity = CAST(@p3 AS NVARCHAR(4000)) AND o.entity_id = t.id)
		ORDER BY t.id`
}

// purgeChunk bounds the tombstones of one transaction: the JSON parameter
// has no limit of its own, but a transaction holding many row locks blocks
// the API's writes of those rows for its length.
const purgeChunk = 500

// tombstoneRow is one tombstone of the JSON parameter purgeSQL reads.
type tombstoneRow struct {
	ID int64 `json:"id"`
	P  int64 `json:"p"`
	F  int64 `json:"f"`
}

// PurgeTombstones deletes per chunk of purgeChunk rows in one transaction:
// it locks the rows first (UPDLOCK, HOLDLOCK, in id order as every batch
// does), so the DELETE that follows reads each row's latest committed
// version even under READ_COMMITTED_SNAPSHOT (Azure SQL's default), and the
// outbox check takes key-range locks (UPDLOCK, HOLDLOCK) on the item's
// outbox entries, so none can be inserted between the check and the commit.
// An API write locks its row before it inserts its outbox entry: the same
// order, so the two cannot deadlock each other.
func (db *DB) PurgeTombstones(ctx context.Context, e domain.Entity, ts []store.Tombstone, before time.Time) ([]int64, error) {
	t, err := table(e)
	if err != nil {
		return nil, err
	}
	lock, del := purgeSQL(t)
	deleted := []int64{}
	ts = slices.SortedFunc(slices.Values(ts), func(a, b store.Tombstone) int { return cmp.Compare(a.ID, b.ID) })
	for chunk := range slices.Chunk(ts, purgeChunk) {
		rows := make([]tombstoneRow, len(chunk))
		for i, x := range chunk {
			rows[i] = tombstoneRow{x.ID, x.Ver.P, x.Ver.F}
		}
		args := []any{str(string(e)), dt(before), jsonParam(rows)}
		var got []int64
		err := db.inTx(ctx, "purge tombstones", func(tx *sql.Tx) error {
			got = got[:0]
			if _, err := tx.ExecContext(ctx, lock, args...); err != nil {
				return err
			}
			rs, err := tx.QueryContext(ctx, del, args...)
			if err != nil {
				return err
			}
			defer rs.Close()
			for rs.Next() {
				var id int64
				if err := rs.Scan(&id); err != nil {
					return err
				}
				got = append(got, id)
			}
			return rs.Err()
		})
		if err != nil {
			return nil, err
		}
		deleted = append(deleted, got...)
	}
	slices.Sort(deleted)
	return deleted, nil
}

// purgeSQL is the lock and delete statements of one chunk; both take @p1
// entity, @p2 before and @p3 the JSON array of tombstoneRow (sp_executesql
// accepts declared parameters a statement does not use). The text is the
// same whatever the chunk holds.
func purgeSQL(t string) (lock, del string) {
	const rows = `OPENJSON(@p3) WITH (id BIGINT '$.id', ver_p BIGINT '$.p', ver_f BIGINT '$.f') AS m`
	lock = `SELECT t.id FROM ` + rows + `
		INNER LOOP JOIN ` + t + ` AS t WITH (UPDLOCK, HOLDLOCK, FORCESEEK) ON t.id = m.id`
	// The DELETE is driven from the JSON with a forced seek too, and so is
	// its outbox check: a scan would take update (and, under HOLDLOCK,
	// range) locks on every row it reads, deadlock with API writes and
	// possibly escalate to a table lock.
	del = `DELETE t OUTPUT DELETED.id
		FROM ` + rows + `
		INNER LOOP JOIN ` + t + ` AS t WITH (FORCESEEK) ON t.id = m.id AND t.ver_p = m.ver_p AND t.ver_f = m.ver_f
		WHERE t.deleted_at IS NOT NULL AND t.deleted_at < @p2
		AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WITH (UPDLOCK, HOLDLOCK, FORCESEEK) WHERE o.entity = CAST(@p1 AS NVARCHAR(4000)) AND o.entity_id = t.id)`
	return lock, del
}
