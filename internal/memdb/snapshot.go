package memdb

import (
	"slices"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Snapshot is a backup of a database: every row, tombstones, the outbox
// and the sequences (the outbox's included), as of one moment. It never
// changes; restore it as often as needed.
type Snapshot struct {
	role store.Role // of the database it was taken of
	s    state
}

// Snapshot takes a backup. It is not an operation of any process, so the
// fault hooks do not apply.
func (d *Data) Snapshot() *Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return &Snapshot{role: d.role, s: d.s.clone()}
}

// Restore puts the database back to snap, as a point-in-time restore does:
// open DBs (processes) see the restored state at their next call and keep
// their floors. A snapshot of a database in the other role is restored as
// it is; Migrate then refuses it, as the adapter refuses sequences created
// for the other role.
func (d *Data) Restore(snap *Snapshot) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.s = snap.s.clone()
}

// Role returns the role of the database the snapshot was taken of.
func (snap *Snapshot) Role() store.Role { return snap.role }

// Products returns every product, tombstones included, by id: for
// checking invariants without a process.
func (snap *Snapshot) Products() []domain.Product {
	return all(&snap.s.products, copyProduct)
}

// Users returns every user, tombstones included, by id.
func (snap *Snapshot) Users() []domain.User {
	return all(&snap.s.users, copyUser)
}

// Outbox returns every outbox entry, oldest first.
func (snap *Snapshot) Outbox() []store.OutboxEntry {
	out := slices.Clone(snap.s.outbox)
	for i := range out {
		out[i].SentAt = copyTime(out[i].SentAt)
	}
	return out
}

// NextID returns the id the entity's sequence hands out next; 0 before
// the schema exists.
func (snap *Snapshot) NextID(e domain.Entity) int64 { return snap.s.seq[e] }

func all[T any](t *table[T], cp func(T) T) []T {
	out := make([]T, len(t.ids))
	for i, id := range t.ids {
		out[i] = cp(t.rows[id])
	}
	return out
}

// Peer returns what the database held about the database in role of.
func (snap *Snapshot) Peer(of store.Role) store.Peer { return snap.s.peers[of] }
