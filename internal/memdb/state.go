package memdb

import (
	"maps"
	"slices"
	"sort"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// state is everything a database holds. Stored rows are values that are
// only ever replaced, never written through their pointers (DeletedAt,
// SentAt), so copies of the state may share those pointers; rows handed to
// callers get their own.
type state struct {
	migrated bool
	seqRole  store.Role              // the role the sequences were created for
	seq      map[domain.Entity]int64 // the next id each sequence hands out
	products table[domain.Product]
	users    table[domain.User]
	// emails is the unique index users_email_live: domain.EmailKey of each
	// live user's email -> its id.
	emails    map[string]int64
	outbox    []store.OutboxEntry // by Seq
	outboxSeq int64               // the outbox's bigserial: last value handed out
	marks     map[int64]string    // sync_marks: number -> token
	markSeq   int64               // sync_marks' identity: last value handed out
	peers     map[store.Role]store.Peer
}

func newState() state {
	return state{
		seq:      map[domain.Entity]int64{},
		products: newTable[domain.Product](),
		users:    newTable[domain.User](),
		emails:   map[string]int64{},
		marks:    map[int64]string{},
		peers:    map[store.Role]store.Peer{},
	}
}

func (s *state) clone() state {
	c := *s
	c.seq = maps.Clone(s.seq)
	c.products, c.users = s.products.clone(), s.users.clone()
	c.emails = maps.Clone(s.emails)
	c.outbox = slices.Clone(s.outbox)
	c.marks, c.peers = maps.Clone(s.marks), maps.Clone(s.peers)
	return c
}

// table is a table with a bigint primary key: rows by id, and the ids in
// order (the index range scans walk).
type table[T any] struct {
	rows map[int64]T
	ids  []int64 // ascending
}

func newTable[T any]() table[T] { return table[T]{rows: map[int64]T{}} }

func (t table[T]) clone() table[T] {
	return table[T]{rows: maps.Clone(t.rows), ids: slices.Clone(t.ids)}
}

func (t *table[T]) get(id int64) (T, bool) {
	r, ok := t.rows[id]
	return r, ok
}

func (t *table[T]) set(id int64, r T) {
	if _, ok := t.rows[id]; !ok {
		i, _ := slices.BinarySearch(t.ids, id)
		t.ids = slices.Insert(t.ids, i, id)
	}
	t.rows[id] = r
}

func (t *table[T]) remove(id int64) {
	if _, ok := t.rows[id]; !ok {
		return
	}
	delete(t.rows, id)
	i, _ := slices.BinarySearch(t.ids, id)
	t.ids = slices.Delete(t.ids, i, i+1)
}

// after returns the ids > after, ascending (shared: do not modify).
func (t *table[T]) after(after int64) []int64 {
	return t.ids[sort.Search(len(t.ids), func(i int) bool { return t.ids[i] > after }):]
}

// maxID returns the highest id with id % 2 == parity, 0 if none, scanning
// back from the top as PostgreSQL's backward index scan does.
func (t *table[T]) maxID(parity int64) int64 {
	for i := len(t.ids) - 1; i >= 0; i-- {
		if t.ids[i]%2 == parity {
			return t.ids[i]
		}
	}
	return 0
}

// rangeOf returns copies of the rows with after < id <= upTo, by id.
func rangeOf[T any](t *table[T], after, upTo int64, cp func(T) T) []T {
	out := []T{}
	for _, id := range t.after(after) {
		if id > upTo {
			break
		}
		out = append(out, cp(t.rows[id]))
	}
	return out
}

// copyProduct and copyUser give a caller a row of its own.
func copyProduct(p domain.Product) domain.Product {
	p.DeletedAt = copyTime(p.DeletedAt)
	return p
}

func copyUser(u domain.User) domain.User {
	u.DeletedAt = copyTime(u.DeletedAt)
	return u
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	c := *t
	return &c
}
