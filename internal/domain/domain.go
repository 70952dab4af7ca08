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
// sync carries it so that last-writer-wins never resurrects a deleted row.
type Product struct {
	ID          int64
	Name        string
	Description string
	Price       Money
	CreatedAt   time.Time
	UpdatedAt   time.Time
	DeletedAt   *time.Time
}

// User is an account; Email is unique among live users, ignoring case.
type User struct {
	ID        int64
	Name      string
	Email     string
	CreatedAt time.Time
	UpdatedAt time.Time
	DeletedAt *time.Time
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
