// Package sample holds the sample data (like the original's
// scripts/initDb.js) and loads it into any store.DB. Every database gets the
// very same rows: the same ids (odd, as if the primary had created them), the
// same fixed timestamps and a zero version vector, so sync finds them equal
// and never has to merge or fight over them, whichever database plays which
// role. Loading writes through store.DB's sync writes (PutProduct, PutUser),
// so no adapter knows about sample data, and both get exactly the same rules:
// a row is inserted only if its id is absent (running it twice creates
// nothing and never resurrects a deleted row), a sample user whose email a
// live user already holds is skipped, no outbox row is written, and a
// database whose sequence could hand out a sample id moves it past that id.
package sample

import (
	"context"
	"errors"
	"fmt"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Stamp is the createdAt, updatedAt and field change time of every sample row.
var Stamp = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Products are the sample products.
var Products = []domain.Product{
	product(1, "Laptop", "High-performance laptop with 16GB RAM", 1299_99),
	product(3, "Smartphone", "Latest smartphone with 128GB storage", 799_99),
	product(5, "Headphones", "Wireless noise-cancelling headphones", 199_99),
	product(7, "Tablet", "10-inch tablet with stylus support", 499_99),
	product(9, "Smartwatch", "Fitness tracking smartwatch", 249_99),
}

// Users are the sample users.
var Users = []domain.User{
	user(1, "John Doe", "john.doe@example.com"),
	user(3, "Jane Smith", "jane.smith@example.com"),
	user(5, "Bob Johnson", "bob.johnson@example.com"),
}

func product(id int64, name, desc string, price domain.Money) domain.Product {
	return domain.Product{ID: id, Name: name, Description: desc, Price: price, CreatedAt: Stamp, UpdatedAt: Stamp,
		NameAt: Stamp, DescriptionAt: Stamp, PriceAt: Stamp}
}

func user(id int64, name, email string) domain.User {
	return domain.User{ID: id, Name: name, Email: email, CreatedAt: Stamp, UpdatedAt: Stamp, NameAt: Stamp, EmailAt: Stamp}
}

// Load inserts the sample rows whose ids are absent. A row that exists (live
// or a tombstone) answers ErrChanged and is left alone; a user whose email
// is taken answers Conflict and is skipped. Any other error stops the load;
// running it again completes it.
func Load(ctx context.Context, db store.DB) error {
	for _, p := range Products {
		if _, err := db.PutProduct(ctx, p, nil); err != nil && !errors.Is(err, store.ErrChanged) {
			return fmt.Errorf("sample product %d: %w", p.ID, err)
		}
	}
	for _, u := range Users {
		_, err := db.PutUser(ctx, u, nil)
		if err != nil && !errors.Is(err, store.ErrChanged) && !domain.IsKind(err, domain.KindConflict) {
			return fmt.Errorf("sample user %d: %w", u.ID, err)
		}
	}
	return nil
}
