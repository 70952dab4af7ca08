package mssql

import (
	"context"
	"database/sql"

	"dualsync/internal/domain"
)

// MaxID returns the highest id of the given parity: a backward scan of the
// clustered primary key that stops at the first such id.
func (db *DB) MaxID(ctx context.Context, e domain.Entity, parity int64) (int64, error) {
	t, err := table(e)
	if err != nil {
		return 0, err
	}
	var top sql.NullInt64
	if err := db.db.QueryRowContext(ctx, "SELECT MAX(id) FROM (SELECT TOP (1) id FROM "+t+" WHERE id % 2 = @p1 ORDER BY id DESC) s", parity).Scan(&top); err != nil {
		return 0, classify(err, "max id", true)
	}
	return top.Int64, nil
}

// AdvanceSequence moves the sequence past past (and past every own id the
// table holds), under the same application lock as every other move.
func (db *DB) AdvanceSequence(ctx context.Context, e domain.Entity, past int64) error {
	if past%2 != idStart(db.role)%2 {
		past = 0 // the other side's parity: only the table's own ids count
	}
	return db.inTx(ctx, "advance sequence", func(tx *sql.Tx) error {
		return classify(db.advanceSequence(ctx, tx, e, past), "advance sequence", true)
	})
}
