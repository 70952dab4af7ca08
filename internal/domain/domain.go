package domain

import (
	"time"
)

// Entity names a kind of synchronised row.
type Entity string

const (
	EntityProduct Entity = "product"
	EntityUser    Entity = "user"
)

// Valid reports whether e is a known entity.
func (e Entity) Valid() bool { return e == EntityProduct || e == EntityUser }

// Product is a catalogue item. DeletedAt marks a tombstone: the API hides it,
// sync carries it so that a delete travels like any change and wins over a
// concurrent edit.
type Product struct {
	ID          int64
	Name        string
	Description string
	Price       Money
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeletedAt   *time.Time

	// Sync metadata, never shown by the API: the version vector and when
	// each field last changed (field-by-field merge of concurrent edits).
	Ver                            Vector
	NameAt, DescriptionAt, PriceAt time.Time
	// Jump is the last jump of this database's own entry of Ver (see
	// Vector.Next). It describes this database's history of the row, so it
	// is local: sync never copies it.
	Jump Jump
}

// User is an account; Email is unique among live users, ignoring case.
type User struct {
	ID        int64
	Name      string
	Email     string
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt *time.Time

	// Sync metadata, as for Product.
	Ver             Vector
	NameAt, EmailAt time.Time
	Jump            Jump // local, as for Product
}

// Deleted reports whether the product is a tombstone.
func (p Product) Deleted() bool { return p.DeletedAt != nil }

// Deleted reports whether the user is a tombstone.
func (u User) Deleted() bool { return u.DeletedAt != nil }

// ProductChange is a validated create, replace or patch of a product: nil
// fields are left as they are (patch only; create and replace set all).
type ProductChange struct {
	Name        *string
	Description *string
	Price       *Money
}

// Apply returns p with the change's fields set.
func (c ProductChange) Apply(p Product) Product {
	if c.Name != nil {
		p.Name = *c.Name
	}
	if c.Description != nil {
		p.Description = *c.Description
	}
	if c.Price != nil {
		p.Price = *c.Price
	}
	return p
}

// ApplyAt returns p with the change's fields set, and the change time of
// each field whose value actually changed set to at.
func (c ProductChange) ApplyAt(p Product, at time.Time) Product {
	q := c.Apply(p)
	if q.Name != p.Name || p.NameAt.IsZero() {
		q.NameAt = at
	}
	if q.Description != p.Description || p.DescriptionAt.IsZero() {
		q.DescriptionAt = at
	}
	if q.Price != p.Price || p.PriceAt.IsZero() {
		q.PriceAt = at
	}
	return q
}

// UserChange is a validated create, replace or patch of a user.
type UserChange struct {
	Name  *string
	Email *string
}

// Apply returns u with the change's fields set.
func (c UserChange) Apply(u User) User {
	if c.Name != nil {
		u.Name = *c.Name
	}
	if c.Email != nil {
		u.Email = *c.Email
	}
	return u
}

// ApplyAt is ProductChange.ApplyAt for users.
func (c UserChange) ApplyAt(u User, at time.Time) User {
	v := c.Apply(u)
	if v.Name != u.Name || u.NameAt.IsZero() {
		v.NameAt = at
	}
	if v.Email != u.Email || u.EmailAt.IsZero() {
		v.EmailAt = at
	}
	return v
}

// Next returns v and the writing side's jump after one API write on the
// primary (or the fallback): that side's entry moves to at least floor, and
// at least one past its value. floor is the writing process's start time in
// microseconds (see Floor): every value an entry took before that start is
// below it, so the first write of a row after a restart skips every value
// the entry may have had in a history this database has since lost (a
// restore, a rebuild); the skip replaces j, so that sync can tell a write
// this database lost from one it has seen (Lost).
func (v Vector) Next(primary bool, floor int64, j Jump) (Vector, Jump) {
	own := &v.P
	if !primary {
		own = &v.F
	}
	next := *own + 1
	if floor > next {
		// From 0 too: a row whose entry is 0 here may have had writes here
		// that a restore took away, and the other database may hold them.
		j = Jump{From: *own, To: floor}
		next = floor
	}
	*own = next
	return v, j
}

// Floor is the least value an entry takes at the first write after a
// process starting at t: t in microseconds, far above any count of writes
// and increasing across restarts as long as clocks do (docs/merge.md).
func Floor(t time.Time) int64 { return t.UnixMicro() }

// Jump is a skip in one side's vector entry: an API write moved it from
// From straight to To (the first write of the row after the writing process
// started). No write of this row on that side ever had a value in between.
type Jump struct{ From, To int64 }

// Lost reports whether a database whose own entry of a row is own, last
// jumping as j, lacks the write that the other database knows as that
// entry's value seen. The other database learns the entry only from this
// one, so under normal operation seen is a value this database's entry had:
// at most own and never inside a jump. Otherwise this database went back in
// time (a restore, a rebuild) and lost that write.
func Lost(own int64, j Jump, seen int64) bool {
	return seen > own || (seen > j.From && seen < j.To)
}
