package memdb

import (
	"context"

	"dualsync/internal/domain"
)

// IDs lists ids, tombstones included, > after, ascending.
func (db *DB) IDs(ctx context.Context, e domain.Entity, after int64, limit int) ([]int64, error) {
	if err := checkEntity(e); err != nil {
		return nil, err
	}
	out := []int64{}
	err := db.do(ctx, "IDs", func(s *state) error {
		ids := s.ids(e, after)
		out = append(out, ids[:min(len(ids), limitOf(limit))]...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ProductsInRange returns the products with after < id <= upTo, tombstones
// included, by id.
func (db *DB) ProductsInRange(ctx context.Context, after, upTo int64) ([]domain.Product, error) {
	var out []domain.Product
	err := db.do(ctx, "ProductsInRange", func(s *state) error {
		out = rangeOf(&s.products, after, upTo, copyProduct)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// UsersInRange is ProductsInRange for users.
func (db *DB) UsersInRange(ctx context.Context, after, upTo int64) ([]domain.User, error) {
	var out []domain.User
	err := db.do(ctx, "UsersInRange", func(s *state) error {
		out = rangeOf(&s.users, after, upTo, copyUser)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
