package mssql

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
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
	}, after, dt(before), string(e), limitOf(limit))
}

// purgeCandidatesSQL: @p1 after, @p2 before, @p3 entity, @p4 limit.
func purgeCandidatesSQL(t string) string {
	return `SELECT TOP (@p4) t.id, t.ver_p, t.ver_f FROM ` + t + ` AS t
		WHERE t.id > @p1 AND t.deleted_at IS NOT NULL AND t.deleted_at < @p2
		AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WHERE o.entity = @p3 AND o.entity_id = t.id)
		ORDER BY t.id`
}

// PurgeTombstones deletes per chunk of stmtChunk rows in one transaction:
// it locks the rows first (UPDLOCK, HOLDLOCK, as PutProduct does), so
// the DELETE that follows reads each row's latest committed version even
// under READ_COMMITTED_SNAPSHOT (Azure SQL's default), and the outbox check
// takes key-range locks (UPDLOCK, HOLDLOCK) on the item's outbox entries,
// so none can be inserted between the check and the commit. An API write
// locks its row before it inserts its outbox entry: the same order, so the
// two cannot deadlock each other.
func (db *DB) PurgeTombstones(ctx context.Context, e domain.Entity, ts []store.Tombstone, before time.Time) ([]int64, error) {
	t, err := table(e)
	if err != nil {
		return nil, err
	}
	deleted := []int64{}
	ts = slices.SortedFunc(slices.Values(ts), func(a, b store.Tombstone) int { return cmp.Compare(a.ID, b.ID) })
	for chunk := range slices.Chunk(ts, stmtChunk) {
		lock, del, args := purgeSQL(t, e, chunk, before)
		var got []int64
		err := db.inTx(ctx, "purge tombstones", func(tx *sql.Tx) error {
			got = got[:0]
			if _, err := tx.ExecContext(ctx, lock, args...); err != nil {
				return err
			}
			rows, err := tx.QueryContext(ctx, del, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var id int64
				if err := rows.Scan(&id); err != nil {
					return err
				}
				got = append(got, id)
			}
			return rows.Err()
		})
		if err != nil {
			return nil, err
		}
		deleted = append(deleted, got...)
	}
	slices.Sort(deleted)
	return deleted, nil
}

// purgeSQL builds the lock and delete statements of one chunk and their
// shared parameters: @p1 entity, @p2 before, then id, ver_p, ver_f of each
// tombstone (the lock names only the ids; sp_executesql accepts declared
// parameters a statement does not use). Only placeholders are built into
// the text.
func purgeSQL(t string, e domain.Entity, ts []store.Tombstone, before time.Time) (lock, del string, args []any) {
	args = []any{string(e), dt(before)}
	ids := make([]string, len(ts))
	values := make([]string, len(ts))
	for i, x := range ts {
		n := len(args)
		ids[i] = fmt.Sprintf("@p%d", n+1)
		values[i] = fmt.Sprintf("(@p%d, @p%d, @p%d)", n+1, n+2, n+3)
		args = append(args, x.ID, x.Ver.P, x.Ver.F)
	}
	lock = `SELECT id FROM ` + t + ` WITH (UPDLOCK, HOLDLOCK, ROWLOCK) WHERE id IN (` + strings.Join(ids, ", ") + `)`
	del = `DELETE t OUTPUT DELETED.id
		FROM ` + t + ` AS t JOIN (VALUES ` + strings.Join(values, ", ") + `) AS m(id, ver_p, ver_f)
		ON t.id = m.id AND t.ver_p = m.ver_p AND t.ver_f = m.ver_f
		WHERE t.deleted_at IS NOT NULL AND t.deleted_at < @p2
		AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WITH (UPDLOCK, HOLDLOCK) WHERE o.entity = @p1 AND o.entity_id = t.id)`
	return lock, del, args
}
