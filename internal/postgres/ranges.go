package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
)

// ProductsInRange reads every row of the range, tombstones included, in one
// primary-key range scan.
func (db *DB) ProductsInRange(ctx context.Context, after, upTo int64) ([]domain.Product, error) {
	return inRange(ctx, db, "products in range", "SELECT "+productCols+" FROM products WHERE id > $1 AND id <= $2 ORDER BY id", scanProduct, after, upTo)
}

// UsersInRange is ProductsInRange for users.
func (db *DB) UsersInRange(ctx context.Context, after, upTo int64) ([]domain.User, error) {
	return inRange(ctx, db, "users in range", "SELECT "+userCols+" FROM users WHERE id > $1 AND id <= $2 ORDER BY id", scanUser, after, upTo)
}

func inRange[T any](ctx context.Context, db *DB, what, query string, scan func(pgx.Row) (T, error), after, upTo int64) ([]T, error) {
	rows, err := db.pool.Query(ctx, query, after, upTo)
	if err != nil {
		return nil, classify(err, what, true)
	}
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, classify(err, what, true)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, what, true)
	}
	return out, nil
}
