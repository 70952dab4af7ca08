package postgres

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

func (db *DB) PurgeCandidates(ctx context.Context, e domain.Entity, after int64, before time.Time, limit int) ([]store.Tombstone, error) {
	t, err := table(e)
	if err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, `SELECT t.id, t.ver_p, t.ver_f FROM `+t+` t
		WHERE t.id > $1 AND t.deleted_at IS NOT NULL AND t.deleted_at < $2
		AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.entity = $3 AND o.entity_id = t.id)
		ORDER BY t.id LIMIT $4`, after, domain.Millis(before), string(e), limitOf(limit))
	if err != nil {
		return nil, classify(err, "list purge candidates", true)
	}
	defer rows.Close()
	out := []store.Tombstone{}
	for rows.Next() {
		var ts store.Tombstone
		if err := rows.Scan(&ts.ID, &ts.Ver.P, &ts.Ver.F); err != nil {
			return nil, classify(err, "list purge candidates", true)
		}
		out = append(out, ts)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "list purge candidates", true)
	}
	return out, nil
}

// PurgeTombstones locks the rows first (in id order, as every writer of
// several rows does), then deletes with every condition checked in a
// statement that starts after the locks are held: in READ COMMITTED it
// sees each row's latest version and every outbox entry committed by a
// writer of that row, since an API write inserts its outbox entry in the
// transaction that changes (and so locks) the row.
func (db *DB) PurgeTombstones(ctx context.Context, e domain.Entity, ts []store.Tombstone, before time.Time) ([]int64, error) {
	t, err := table(e)
	if err != nil {
		return nil, err
	}
	deleted := []int64{}
	if len(ts) == 0 {
		return deleted, nil
	}
	ids, vp, vf := make([]int64, len(ts)), make([]int64, len(ts)), make([]int64, len(ts))
	for i, x := range ts {
		ids[i], vp[i], vf[i] = x.ID, x.Ver.P, x.Ver.F
	}
	err = db.inTx(ctx, "purge tombstones", func(tx pgx.Tx) error {
		deleted = deleted[:0]
		if _, err := tx.Exec(ctx, "SELECT id FROM "+t+" WHERE id = ANY($1) ORDER BY id FOR UPDATE", ids); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM `+t+` t USING unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS m(id, ver_p, ver_f)
			WHERE t.id = m.id AND t.ver_p = m.ver_p AND t.ver_f = m.ver_f
			AND t.deleted_at IS NOT NULL AND t.deleted_at < $1
			AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.entity = $5 AND o.entity_id = t.id)
			RETURNING t.id`, domain.Millis(before), ids, vp, vf, string(e))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			deleted = append(deleted, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(deleted)
	return deleted, nil
}
