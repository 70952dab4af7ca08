package mssql

import (
	"context"

	"dualsync/internal/domain"
)

// Range reads select the same columns, through the same scan, as
// LoadProduct and LoadUser, so a row compares equal exactly when the merge
// would find it equal (the PostgreSQL adapter does the same on its side).
const (
	productsInRange = "SELECT " + productCols + " FROM dbo.products WHERE id > @p1 AND id <= @p2 ORDER BY id"
	usersInRange    = "SELECT " + userCols + " FROM dbo.users WHERE id > @p1 AND id <= @p2 ORDER BY id"
)

// ProductsInRange reads every row of the range, tombstones included, in one
// clustered-index range seek.
func (db *DB) ProductsInRange(ctx context.Context, after, upTo int64) ([]domain.Product, error) {
	return queryList(ctx, db.db, "products in range", productsInRange, scanProduct, after, upTo)
}

// UsersInRange is ProductsInRange for users.
func (db *DB) UsersInRange(ctx context.Context, after, upTo int64) ([]domain.User, error) {
	return queryList(ctx, db.db, "users in range", usersInRange, scanUser, after, upTo)
}
