// Package memdb is an in-memory store.DB that behaves as the PostgreSQL
// adapter does (internal/postgres), down to its sequences, outbox and error
// kinds, and passes the same contract suite (storetest). It exists so that
// the sync engine can be run over whole histories (backups, restores,
// process restarts, faults) many thousands of times a minute: it is
// deterministic (no goroutines, no sleeping, the clock is the caller's) and
// every operation is one transaction under one mutex.
//
// A Data is one database's durable state; each DB opened on it is one
// process (its own start time, so its own floor for version vectors), and
// several may share one Data.
package memdb

import (
	"context"
	"fmt"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Data is one database: everything PostgreSQL would keep on disk. It is
// safe for concurrent use; every operation holds its one mutex throughout.
type Data struct {
	mu   sync.Mutex
	role store.Role
	s    state

	// Fail, if set, is called at the start of every operation that would
	// reach the database, with the name of the DB method ("CreateProduct",
	// "PutUsers", ...). A non-nil error is returned as is and nothing
	// changes; Unreached(op) is the error of a database that is down.
	Fail func(op string) error
	// FailAfter, if set, is called after an operation succeeded and its
	// change is in place: a non-nil error is returned as is, the change
	// stays (a COMMIT whose answer was lost; see Uncertain).
	//
	// Both hooks run under the mutex: they must not call into this Data.
	// Set them before the Data is shared, or with SetFaults.
	FailAfter func(op string) error

	// tokens counts the marks' tokens handed out: outside the state, so a
	// restore never hands one out again (as 128 random bits never repeat).
	tokens int64
}

// New returns an empty database in role, as a freshly created PostgreSQL
// database is: no schema until a DB on it runs Migrate.
func New(role store.Role) *Data {
	if role != store.RolePrimary && role != store.RoleFallback {
		panic(fmt.Sprintf("memdb: unknown role %q", role))
	}
	return &Data{role: role, s: newState()}
}

// Role returns the role the database was created in.
func (d *Data) Role() store.Role { return d.role }

// SetFaults sets Fail and FailAfter under the mutex, for use while other
// goroutines use the Data.
func (d *Data) SetFaults(fail, after func(op string) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.Fail, d.FailAfter = fail, after
}

// Unreached is the error of a database that cannot be reached: Unavailable
// with store.ErrUnreached in its chain, so failover may redo the write
// elsewhere, as the PostgreSQL adapter reports a refused connection.
func Unreached(op string) error {
	return domain.Wrap(domain.KindUnavailable, fmt.Errorf("%w: memdb: %s: injected fault", store.ErrUnreached, op), "the database is unavailable")
}

// Uncertain is the error of a COMMIT whose answer was lost: Unavailable
// without store.ErrUnreached, since the change may have been applied.
func Uncertain(op string) error {
	return domain.Wrap(domain.KindUnavailable, fmt.Errorf("memdb: %s: connection lost after the commit was sent", op), "the database is unavailable")
}

// DB is one process's handle on a Data: the process's clock and its floor.
type DB struct {
	data   *Data
	role   store.Role
	now    domain.Clock
	floor  int64 // as postgres.DB.floor: the process's start, domain.Floor
	closed bool  // guarded by data.mu
}

var _ store.DB = (*DB)(nil)

// Open starts a process on the database: its floor is domain.Floor(now())
// at this call, as postgres.Open takes it. A nil now is time.Now.
func (d *Data) Open(now func() time.Time) *DB {
	if now == nil {
		now = time.Now
	}
	return &DB{data: d, role: d.role, now: now, floor: domain.Floor(now())}
}

func (db *DB) Role() store.Role { return db.role }

// Driver is "postgres": memdb stands in for the PostgreSQL adapter (and the
// contract suite accepts only the two real drivers).
func (db *DB) Driver() string { return "postgres" }

// Close ends the process's use of the database; later calls fail, as on a
// closed pool. The Data lives on.
func (db *DB) Close() {
	db.data.mu.Lock()
	defer db.data.mu.Unlock()
	db.closed = true
}

func (db *DB) Ping(ctx context.Context) error {
	return db.do(ctx, "Ping", func(*state) error { return nil })
}

func (db *DB) clock() time.Time { return domain.Millis(db.now()) }
func (db *DB) primary() bool    { return db.role == store.RolePrimary }

// do runs fn as one transaction of op: under the lock, after the fault
// hook, on a migrated schema. fn checks everything before it changes
// anything, so an error leaves the state as it was (sequences excepted,
// which PostgreSQL does not roll back either).
func (db *DB) do(ctx context.Context, op string, fn func(s *state) error) error {
	d := db.data
	d.mu.Lock()
	defer d.mu.Unlock()
	if db.closed {
		return domain.Errorf(domain.KindInternal, "memdb: %s on a closed DB", op)
	}
	if err := ctx.Err(); err != nil {
		// As the adapter classifies a cancelled or timed-out query.
		return domain.Wrap(domain.KindUnavailable, fmt.Errorf("%w: %w", store.ErrUnreached, err), "the database is unavailable")
	}
	if d.Fail != nil {
		if err := d.Fail(op); err != nil {
			return err
		}
	}
	if !d.s.migrated && op != "Migrate" && op != "Ping" {
		// PostgreSQL: relation "products" does not exist (42P01), internal.
		return domain.Errorf(domain.KindInternal, "memdb: %s: the schema is not migrated", op)
	}
	if err := fn(&d.s); err != nil {
		return err
	}
	if d.FailAfter != nil {
		return d.FailAfter(op)
	}
	return nil
}

// Migrate creates the schema once: the sequences start at the role's first
// id then. As the adapter, it refuses sequences made for the other role (a
// restore of the other database's backup) and moves each sequence past the
// own-parity ids the tables hold.
func (db *DB) Migrate(ctx context.Context) error {
	return db.do(ctx, "Migrate", func(s *state) error {
		if !s.migrated {
			s.migrated, s.seqRole = true, db.role
			for _, e := range entities {
				s.seq[e] = idStart(db.role)
			}
		}
		if s.seqRole != db.role {
			return domain.Errorf(domain.KindInternal,
				"memdb: the sequences were created for the %s, but this database is opened as %s", s.seqRole, db.role)
		}
		for _, e := range entities {
			s.advance(db.role, e, 0)
		}
		return nil
	})
}

var entities = []domain.Entity{domain.EntityProduct, domain.EntityUser}

// idStart is the first id of the role's sequences: odd on the primary, even
// on the fallback.
func idStart(r store.Role) int64 {
	if r == store.RoleFallback {
		return 2
	}
	return 1
}

func notFound(e domain.Entity, id int64) error {
	return domain.Errorf(domain.KindNotFound, "%s %d not found", e, id)
}

func changed(tbl string, id int64) error {
	return domain.Wrap(domain.KindUnavailable, store.ErrChanged, fmt.Sprintf("%s %d changed during sync; it is merged again", tbl, id))
}

func checkEntity(e domain.Entity) error {
	if !e.Valid() {
		return domain.Errorf(domain.KindInvalid, "unknown entity %q", e)
	}
	return nil
}

func limitOf(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}

func millisPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := domain.Millis(*t)
	return &u
}

func putResult(exists, live, deleted bool) store.PutResult {
	switch {
	case !exists:
		return store.PutCreated
	case live && deleted:
		return store.PutDeleted
	}
	return store.PutUpdated
}
