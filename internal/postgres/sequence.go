package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
)

// seqLockBase + entity offset: advisory lock keys that serialise moves of
// one sequence (setval is not transactional, so two movers must not
// interleave their read and write).
const seqLockBase = 0x6473716c736571 // "dsqlseq"

// advanceSequence moves the entity's id sequence past the highest id of this
// database's own parity that the table holds (at least id), so Create never
// hands out an id a row already has: a rebuilt or restored database gets
// rows of its own parity back from the other side through sync. It never
// moves a sequence backwards. id 0 means "look only at the table".
func (db *DB) advanceSequence(ctx context.Context, tx pgx.Tx, e domain.Entity, id int64) error {
	t, err := table(e)
	if err != nil {
		return err
	}
	parity := idStart(db.role) % 2
	if id != 0 && id%2 != parity {
		return nil // the other side's id: never allocated here
	}
	seq := t + "_id_seq"
	// The next value is last_value + 2 once called, else last_value itself.
	const nextSQL = "SELECT CASE WHEN is_called THEN last_value + 2 ELSE last_value END FROM "
	var next int64
	if err := tx.QueryRow(ctx, nextSQL+seq).Scan(&next); err != nil {
		return err
	}
	if id != 0 && id < next {
		return nil // the common case: nothing to do, no lock taken
	}
	lock := int64(seqLockBase)
	if e == domain.EntityUser {
		lock++
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", lock); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, nextSQL+seq).Scan(&next); err != nil {
		return err
	}
	var top *int64
	// Backward index scan, stopping at the first id of our parity.
	if err := tx.QueryRow(ctx, "SELECT max(id) FROM (SELECT id FROM "+t+" WHERE id % 2 = $1 ORDER BY id DESC LIMIT 1) s", parity).Scan(&top); err != nil {
		return err
	}
	want := id
	if top != nil && *top > want {
		want = *top
	}
	if want == 0 || want < next {
		return nil
	}
	_, err = tx.Exec(ctx, "SELECT setval($1::regclass, $2::bigint, true)", seq, want)
	return err
}

// MaxID returns the highest id of the given parity, by a backward index
// scan that stops at the first such id.
func (db *DB) MaxID(ctx context.Context, e domain.Entity, parity int64) (int64, error) {
	t, err := table(e)
	if err != nil {
		return 0, err
	}
	var top *int64
	if err := db.pool.QueryRow(ctx, "SELECT max(id) FROM (SELECT id FROM "+t+" WHERE id % 2 = $1 ORDER BY id DESC LIMIT 1) s", parity).Scan(&top); err != nil {
		return 0, classify(err, "max id", true)
	}
	if top == nil {
		return 0, nil
	}
	return *top, nil
}

// AdvanceSequence moves the sequence past past (and past every own id the
// table holds), under the same lock as every other move.
func (db *DB) AdvanceSequence(ctx context.Context, e domain.Entity, past int64) error {
	if past%2 != idStart(db.role)%2 {
		past = 0 // the other side's parity: only the table's own ids count
	}
	return db.inTx(ctx, "advance sequence", func(tx pgx.Tx) error {
		return classify(db.advanceSequence(ctx, tx, e, past), "advance sequence", true)
	})
}
