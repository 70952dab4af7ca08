// Package store defines the contract every database adapter (postgres,
// mssql) fulfils, so the failover wrapper and the sync engine can use either
// database in either role. storetest holds the one contract test suite.
package store

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"dualsync/internal/domain"
)

// Role is the part a database plays; it fixes the parity of the ids it
// allocates so rows created on both sides never collide.
type Role string

const (
	RolePrimary  Role = "primary"  // allocates odd ids: 1, 3, 5, ...
	RoleFallback Role = "fallback" // allocates even ids: 2, 4, 6, ...
)

// ErrUnreached is in the chain of an Unavailable error when the database
// certainly applied nothing (no connection, or the transaction failed before
// COMMIT was sent), so the failover wrapper may redo a write elsewhere.
var ErrUnreached = errors.New("database not reached; nothing was changed")

// ErrChanged is in the chain of a Put's error when the target row no longer
// holds the version vector the caller read (or now exists where it was
// absent): someone wrote it meanwhile. Nothing was changed; the caller reads
// again and merges again.
var ErrChanged = errors.New("the row changed since sync read it")

// Page selects live rows with id > After, at most Limit of them, by id.
type Page struct {
	After int64
	Limit int
}

// OutboxMark names the outbox entries of one item that a message covers:
// those whose Counter <= UpTo.
type OutboxMark struct {
	ID   int64
	UpTo int64
}

// OutboxEntry is a change that must reach the other database. A row is
// written in the same transaction as the change it describes. Counter is
// this database's entry of the changed row's version vector after the
// write (Ver.P on the primary, Ver.F on the fallback): the entry is
// acknowledged (deleted) once sync has made both databases agree on a
// vector whose entry for this side is at least Counter.
type OutboxEntry struct {
	Seq       int64
	Entity    domain.Entity
	ID        int64
	Counter   int64
	CreatedAt time.Time
	SentAt    *time.Time // last time a message was enqueued for it; nil if never
}

// ProductPut is one compare-and-set write of PutProducts.
type ProductPut struct {
	Product domain.Product
	Expect  *domain.Vector // nil: the row must be absent
}

// UserPut is one compare-and-set write of PutUsers.
type UserPut struct {
	User   domain.User
	Expect *domain.Vector // nil: the row must be absent
}

// LockOrder returns the indexes of puts by ascending id: adapters lock the
// rows of a joint put in this order, so two joint puts never deadlock.
func LockOrder(puts []UserPut) []int {
	return byID(len(puts), func(i int) int64 { return puts[i].User.ID })
}

// ProductLockOrder is LockOrder for PutProducts.
func ProductLockOrder(puts []ProductPut) []int {
	return byID(len(puts), func(i int) int64 { return puts[i].Product.ID })
}

func byID(n int, id func(int) int64) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return cmp.Compare(id(a), id(b)) })
	return idx
}

// PutResult says what a sync write did to the target row.
type PutResult string

const (
	PutCreated PutResult = "created" // the row did not exist
	PutUpdated PutResult = "updated" // the row was overwritten
	PutDeleted PutResult = "deleted" // a live row became a tombstone
	// PutChanged: PutProducts did not write this row, which no longer held
	// the expected vector (PutProduct returns ErrChanged instead).
	PutChanged PutResult = "changed"
)

// Own returns the entry of v that counts writes made on the database in role r.
func Own(r Role, v domain.Vector) int64 {
	if r == RolePrimary {
		return v.P
	}
	return v.F
}

// DB is one database in one role. Errors carry domain kinds: NotFound for a
// missing or tombstoned row, Conflict for a duplicate email, Unavailable when
// the database cannot be reached or times out (the caller may fail over),
// Internal otherwise. All times are UTC milliseconds.
type DB interface {
	// API operations: they never show or change tombstoned rows, and each
	// change writes its outbox row in the same transaction.
	ListProducts(ctx context.Context, p Page) ([]domain.Product, error)
	GetProduct(ctx context.Context, id int64) (domain.Product, error)
	CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error)
	UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error)
	DeleteProduct(ctx context.Context, id int64) error

	ListUsers(ctx context.Context, p Page) ([]domain.User, error)
	GetUser(ctx context.Context, id int64) (domain.User, error)
	CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error)
	UpdateUser(ctx context.Context, id int64, c domain.UserChange) (domain.User, error)
	DeleteUser(ctx context.Context, id int64) error

	// Sync operations see tombstones and write no outbox rows (a synced
	// change must not echo back).
	//
	// LoadProduct returns the row, tombstone included; ok is false if absent.
	LoadProduct(ctx context.Context, id int64) (p domain.Product, ok bool, err error)
	// PutProduct writes p as it is (id, times, vector, field times) if the
	// target row still holds the vector expect, or is still absent when
	// expect is nil (compare and set); otherwise it changes nothing and
	// returns an error with ErrChanged in its chain. Inserting an id of this
	// database's own parity moves its sequence past that id, never back.
	PutProduct(ctx context.Context, p domain.Product, expect *domain.Vector) (PutResult, error)
	// LoadProducts is LoadProduct for many ids at once: absent ids are
	// absent from the map.
	LoadProducts(ctx context.Context, ids []int64) (map[int64]domain.Product, error)
	// PutProducts applies PutProduct to each put, with one round of
	// statements for all of them in one transaction: real-time sync copies
	// many rows at a time. Each put is a compare-and-set of its own: one
	// whose row changed is not written and its result is PutChanged, the
	// others are written. Results are in the order of puts. A batch naming
	// an id twice is Invalid (CheckProductPuts); after any error nothing was
	// written.
	PutProducts(ctx context.Context, puts []ProductPut) ([]PutResult, error)
	LoadUser(ctx context.Context, id int64) (u domain.User, ok bool, err error)
	// PutUser is PutProduct for users; an email (by domain.EmailKey) held by
	// another live user gives a Conflict error and changes nothing.
	PutUser(ctx context.Context, u domain.User, expect *domain.Vector) (PutResult, error)
	// PutUsers applies several PutUser writes in one transaction, all or
	// none; emails moving among them (a move or a swap) do not conflict
	// with each other. Results are in the order of puts. A batch naming an
	// id twice is Invalid (CheckUserPuts) and writes nothing.
	PutUsers(ctx context.Context, puts []UserPut) ([]PutResult, error)
	// UserByEmail returns the live user whose email has email's
	// domain.EmailKey; ok is false if none.
	UserByEmail(ctx context.Context, email string) (u domain.User, ok bool, err error)
	// IDs lists ids of the entity, tombstones included, > after, ascending.
	IDs(ctx context.Context, e domain.Entity, after int64, limit int) ([]int64, error)

	// Outbox.
	//
	// PendingOutbox lists entries never sent and created before notSentBefore,
	// or last sent before resendBefore, oldest first.
	PendingOutbox(ctx context.Context, notSentBefore, resendBefore time.Time, limit int) ([]OutboxEntry, error)
	// MarkOutboxSent records that a message was enqueued at `at` for the
	// entries of each marked item of the entity whose Counter <= its UpTo,
	// in one statement: one message carries many items.
	MarkOutboxSent(ctx context.Context, e domain.Entity, marks []OutboxMark, at time.Time) error
	// AckOutbox deletes the entries of each marked item of the entity whose
	// Counter <= its UpTo, in one statement.
	AckOutbox(ctx context.Context, e domain.Entity, marks []OutboxMark) error
	// OutboxDepth counts the entries not yet acknowledged.
	OutboxDepth(ctx context.Context) (int64, error)

	// Migrate applies the embedded schema migrations; running it again, or
	// concurrently, is harmless.
	Migrate(ctx context.Context) error
	// MaxID returns the highest id of the entity whose parity is parity
	// (id % 2), tombstones included; 0 if none.
	MaxID(ctx context.Context, e domain.Entity, parity int64) (int64, error)
	// AdvanceSequence moves this database's id sequence of the entity so
	// that the next id it hands out is above past (an id of its own parity
	// the other database holds); never backwards.
	AdvanceSequence(ctx context.Context, e domain.Entity, past int64) error

	// Ping checks the database answers a trivial query.
	Ping(ctx context.Context) error
	// Role returns the role this DB was opened in; Driver "postgres" or "sqlserver".
	Role() Role
	Driver() string
	Close()

	// Tombstone purge (retention, docs/retention in README): tombstones both
	// databases hold identically, long deleted, with no outbox entry, go.
	//
	// PurgeCandidates lists the tombstones of e with id > after, deleted
	// before `before`, with no outbox entry, ascending, at most limit.
	PurgeCandidates(ctx context.Context, e domain.Entity, after int64, before time.Time, limit int) ([]Tombstone, error)
	// PurgeTombstones deletes each of ts that still is a tombstone deleted
	// before `before`, still holds exactly ts's vector and has no outbox
	// entry, all checked in the statement that deletes under the rows'
	// locks: a row a write changed meanwhile stays. It returns the ids it
	// deleted, ascending.
	PurgeTombstones(ctx context.Context, e domain.Entity, ts []Tombstone, before time.Time) ([]int64, error)
	// ProductsInRange returns the products with after < id <= upTo,
	// tombstones included, ascending by id, every column LoadProduct reads:
	// diff and verify runs compare a range of ids of both databases at once.
	ProductsInRange(ctx context.Context, after, upTo int64) ([]domain.Product, error)
	// UsersInRange is ProductsInRange for users.
	UsersInRange(ctx context.Context, after, upTo int64) ([]domain.User, error)

	// Restore detection (docs/merge.md, "Databases that go back in time").
	//
	// AddMark commits a new mark of this database's history and returns it:
	// its N is above every mark this history added before. Old marks are
	// pruned, all but the latest MarksKept.
	AddMark(ctx context.Context) (Mark, error)
	// HasMark reports whether this database holds mark m, or m is older
	// than every mark it keeps (pruned: no evidence of a loss; the other
	// database's record of it is then stale, e.g. that database was itself
	// restored). A database with no marks holds none.
	HasMark(ctx context.Context, m Mark) (bool, error)
	// Peer returns what this database holds about the database in role of;
	// the zero Peer if nothing.
	Peer(ctx context.Context, of Role) (Peer, error)
	// SetPeer replaces what this database holds about the database in role
	// of with p, if it still holds old (compare and set; the zero Peer
	// means nothing held). It reports whether it wrote.
	SetPeer(ctx context.Context, of Role, old, p Peer) (bool, error)
}

// Mark names one point of a database's history. A restore from a backup
// taken before the mark was added, or a rebuild, loses it: what a database
// lacks of the marks the other one saw tells that it went back in time,
// whatever it did afterwards (its N may be handed out again; its Token, 128
// random bits, never is).
type Mark struct {
	N     int64
	Token string
}

// IsZero reports whether m names no mark.
func (m Mark) IsZero() bool { return m == Mark{} }

// MarksKept is how many of its latest marks a database keeps: only the
// latest one the other database recorded is looked up, and each mark is
// recorded there right after it is added.
const MarksKept = 1000

// Peer is what one database holds about the other: the latest mark of the
// other's history that sync saw before copying the other's rows into this
// one, and since when the other is known to have gone back in time (zero:
// not known; cleared once a repair run has compared every row).
type Peer struct {
	Seen        Mark
	RegressedAt time.Time
}

// Regressed reports whether the other database went back in time and no
// repair has finished since.
func (p Peer) Regressed() bool { return !p.RegressedAt.IsZero() }

// Equal reports whether p and q hold the same (times compared as instants).
func (p Peer) Equal(q Peer) bool { return p.Seen == q.Seen && p.RegressedAt.Equal(q.RegressedAt) }

// Tombstone names a tombstoned row by id and the vector it held when read.
type Tombstone struct {
	ID  int64
	Ver domain.Vector
}
