// Package sample holds the sample data both adapters load (like the original
// scripts/initDb.js). Every database gets the very same rows: the same ids
// (odd, as if the primary had created them) and the same fixed timestamps, so
// sync finds them equal and never has to merge or fight over them, whichever
// database plays which role. Seeding inserts a row only if its id is absent,
// so running it twice creates nothing and never resurrects a deleted row.
package sample

import (
	"time"

	"dualsync/internal/domain"
)

// Stamp is the createdAt and updatedAt of every sample row.
var Stamp = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Products are the sample products.
var Products = []domain.Product{
	{ID: 1, Name: "Laptop", Description: "High-performance laptop with 16GB RAM", Price: 1299_99, CreatedAt: Stamp, UpdatedAt: Stamp},
	{ID: 3, Name: "Smartphone", Description: "Latest smartphone with 128GB storage", Price: 799_99, CreatedAt: Stamp, UpdatedAt: Stamp},
	{ID: 5, Name: "Headphones", Description: "Wireless noise-cancelling headphones", Price: 199_99, CreatedAt: Stamp, UpdatedAt: Stamp},
	{ID: 7, Name: "Tablet", Description: "10-inch tablet with stylus support", Price: 499_99, CreatedAt: Stamp, UpdatedAt: Stamp},
	{ID: 9, Name: "Smartwatch", Description: "Fitness tracking smartwatch", Price: 249_99, CreatedAt: Stamp, UpdatedAt: Stamp},
}

// Users are the sample users.
var Users = []domain.User{
	{ID: 1, Name: "John Doe", Email: "john.doe@example.com", CreatedAt: Stamp, UpdatedAt: Stamp},
	{ID: 3, Name: "Jane Smith", Email: "jane.smith@example.com", CreatedAt: Stamp, UpdatedAt: Stamp},
	{ID: 5, Name: "Bob Johnson", Email: "bob.johnson@example.com", CreatedAt: Stamp, UpdatedAt: Stamp},
}

// MaxID is the largest sample id; a database whose sequence could hand it
// out again advances the sequence past it when seeding.
const MaxID int64 = 9
