package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// AddMark commits a new mark (one statement, no explicit transaction: it
// is on the path of every copy) and, every 100th, prunes marks older than
// store.MarksKept; a prune that fails leaves a few more marks, no harm.
func (db *DB) AddMark(ctx context.Context) (store.Mark, error) {
	m := store.Mark{Token: rand.Text()}
	if err := db.pool.QueryRow(ctx, `INSERT INTO sync_marks (token) VALUES ($1) RETURNING n`, m.Token).Scan(&m.N); err != nil {
		return store.Mark{}, classify(err, "add mark", false)
	}
	if m.N%100 == 0 {
		_, _ = db.pool.Exec(ctx, `DELETE FROM sync_marks WHERE n <= $1`, m.N-store.MarksKept)
	}
	return m, nil
}

// HasMark is two primary-key lookups (the mark, the oldest mark).
func (db *DB) HasMark(ctx context.Context, m store.Mark) (bool, error) {
	var ok bool
	err := db.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sync_marks WHERE n = $1 AND token = $2)
		OR coalesce($1 < (SELECT min(n) FROM sync_marks), false)`, m.N, m.Token).Scan(&ok)
	if err != nil {
		return false, classify(err, "look up mark", true)
	}
	return ok, nil
}

// Peer reads the one row of sync_peer for the other database's role.
func (db *DB) Peer(ctx context.Context, of store.Role) (store.Peer, error) {
	var (
		p  store.Peer
		at *time.Time
	)
	err := db.pool.QueryRow(ctx, `SELECT seen_n, seen_token, regressed_at FROM sync_peer WHERE role = $1`, string(of)).Scan(&p.Seen.N, &p.Seen.Token, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Peer{}, nil
	}
	if err != nil {
		return store.Peer{}, classify(err, "read peer", true)
	}
	if at != nil {
		p.RegressedAt = domain.Millis(*at)
	}
	return p, nil
}

// SetPeer writes p where the row still holds old: an insert that meets an
// existing row, or an update whose WHERE no longer matches, writes nothing.
func (db *DB) SetPeer(ctx context.Context, of store.Role, old, p store.Peer) (bool, error) {
	var (
		tag interface{ RowsAffected() int64 }
		err error
	)
	if old == (store.Peer{}) {
		tag, err = db.pool.Exec(ctx, `INSERT INTO sync_peer (role, seen_n, seen_token, regressed_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (role) DO NOTHING`, string(of), p.Seen.N, p.Seen.Token, timeOrNil(p.RegressedAt))
	} else {
		tag, err = db.pool.Exec(ctx, `UPDATE sync_peer SET seen_n = $2, seen_token = $3, regressed_at = $4
			WHERE role = $1 AND seen_n = $5 AND seen_token = $6 AND regressed_at IS NOT DISTINCT FROM $7`,
			string(of), p.Seen.N, p.Seen.Token, timeOrNil(p.RegressedAt), old.Seen.N, old.Seen.Token, timeOrNil(old.RegressedAt))
	}
	if err != nil {
		return false, classify(err, "set peer", false)
	}
	return tag.RowsAffected() == 1, nil
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = domain.Millis(t)
	return &t
}
