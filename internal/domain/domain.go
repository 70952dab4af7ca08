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

// Bump returns v with the entry of the side that writes (primary or not)
// incremented: every API write counts once on its own side.
func (v Vector) Bump(primary bool) Vector {
	if primary {
		v.P++
	} else {
		v.F++
	}
	return v
}
