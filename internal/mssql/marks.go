package mssql

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"time"

	mssqldb "github.com/microsoft/go-mssqldb"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

const (
	addMarkSQL   = `INSERT INTO dbo.sync_marks (token) OUTPUT INSERTED.n VALUES (@p1)`
	pruneMarkSQL = `DELETE FROM dbo.sync_marks WHERE n <= @p1`
	hasMarkSQL   = `SELECT CASE WHEN EXISTS (SELECT 1 FROM dbo.sync_marks WHERE n = @p1 AND token = CAST(@p2 AS NVARCHAR(36)))
OR @p1 < (SELECT MIN(n) FROM dbo.sync_marks) THEN 1 ELSE 0 END`
	peerSQL = `SELECT seen_n, seen_token, regressed_at FROM dbo.sync_peer WHERE role = CAST(@p1 AS NVARCHAR(16))`
	// The lock hints make "insert unless present" one atomic step: two
	// instances inserting at once serialise on the key range.
	insertPeerSQL = `INSERT INTO dbo.sync_peer (role, seen_n, seen_token, regressed_at)
SELECT CAST(@p1 AS NVARCHAR(16)), @p2, @p3, @p4
WHERE NOT EXISTS (SELECT 1 FROM dbo.sync_peer WITH (UPDLOCK, HOLDLOCK) WHERE role = CAST(@p1 AS NVARCHAR(16)))`
	updatePeerSQL = `UPDATE dbo.sync_peer SET seen_n = @p2, seen_token = @p3, regressed_at = @p4
WHERE role = CAST(@p1 AS NVARCHAR(16)) AND seen_n = @p5 AND seen_token = CAST(@p6 AS NVARCHAR(36))
AND (regressed_at = @p7 OR (regressed_at IS NULL AND @p7 IS NULL))`
)

// AddMark commits a new mark (one statement, no explicit transaction: it
// is on the path of every copy) and, every 100th, prunes marks older than
// store.MarksKept; a prune that fails leaves a few more marks, no harm.
func (db *DB) AddMark(ctx context.Context) (store.Mark, error) {
	m := store.Mark{Token: rand.Text()}
	if err := db.db.QueryRowContext(ctx, addMarkSQL, str(m.Token)).Scan(&m.N); err != nil {
		return store.Mark{}, classify(err, "add mark", false)
	}
	if m.N%100 == 0 {
		_, _ = db.db.ExecContext(ctx, pruneMarkSQL, m.N-store.MarksKept)
	}
	return m, nil
}

// HasMark is two primary-key lookups (the mark, the oldest mark).
func (db *DB) HasMark(ctx context.Context, m store.Mark) (bool, error) {
	var n int64
	if err := db.db.QueryRowContext(ctx, hasMarkSQL, m.N, str(m.Token)).Scan(&n); err != nil {
		return false, classify(err, "look up mark", true)
	}
	return n > 0, nil
}

// Peer reads the one row of dbo.sync_peer for the other database's role.
func (db *DB) Peer(ctx context.Context, of store.Role) (store.Peer, error) {
	var (
		p  store.Peer
		at sql.NullTime
	)
	err := db.db.QueryRowContext(ctx, peerSQL, str(string(of))).Scan(&p.Seen.N, &p.Seen.Token, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Peer{}, nil
	}
	if err != nil {
		return store.Peer{}, classify(err, "read peer", true)
	}
	if t := nullTime(at); t != nil {
		p.RegressedAt = domain.Millis(*t)
	}
	return p, nil
}

// SetPeer writes p where the row still holds old.
func (db *DB) SetPeer(ctx context.Context, of store.Role, old, p store.Peer) (bool, error) {
	var (
		res sql.Result
		err error
	)
	if old == (store.Peer{}) {
		res, err = db.db.ExecContext(ctx, insertPeerSQL, str(string(of)), p.Seen.N, str(p.Seen.Token), optTime(p.RegressedAt))
	} else {
		res, err = db.db.ExecContext(ctx, updatePeerSQL, str(string(of)), p.Seen.N, str(p.Seen.Token), optTime(p.RegressedAt),
			old.Seen.N, str(old.Seen.Token), optTime(old.RegressedAt))
	}
	if err != nil {
		return false, classify(err, "set peer", false)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, classify(err, "set peer", false)
	}
	return n == 1, nil
}

// optTime is dtPtr for a time whose zero value means none.
func optTime(t time.Time) mssqldb.NullDateTime {
	if t.IsZero() {
		return mssqldb.NullDateTime{}
	}
	return dtPtr(&t)
}
