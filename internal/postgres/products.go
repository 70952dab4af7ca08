package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Prices leave the database as text so they never pass through float64.
const productCols = "id, name, description, price::text, created_at, updated_at, deleted_at"

func scanProduct(row pgx.Row) (domain.Product, error) {
	var (
		p       domain.Product
		price   string
		deleted *time.Time
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &price, &p.CreatedAt, &p.UpdatedAt, &deleted); err != nil {
		return p, err
	}
	m, err := domain.ParseMoney(price)
	if err != nil {
		return p, domain.Wrap(domain.KindInternal, err, "postgres: unreadable price "+price)
	}
	p.Price = m
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC(), utcPtr(deleted)
	return p, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func millisPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := domain.Millis(*t)
	return &u
}

func notFound(e domain.Entity, id int64) error {
	return domain.Errorf(domain.KindNotFound, "%s %d not found", e, id)
}

func limitOf(n int) int {
	if n <= 0 {
		return 100
	}
	return n
}

func (db *DB) ListProducts(ctx context.Context, p store.Page) ([]domain.Product, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+productCols+" FROM products WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2", p.After, limitOf(p.Limit))
	if err != nil {
		return nil, classify(err, "list products", true)
	}
	defer rows.Close()
	out := []domain.Product{}
	for rows.Next() {
		pr, err := scanProduct(rows)
		if err != nil {
			return nil, classify(err, "list products", true)
		}
		out = append(out, pr)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "list products", true)
	}
	return out, nil
}

func (db *DB) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	p, err := scanProduct(db.pool.QueryRow(ctx, "SELECT "+productCols+" FROM products WHERE id = $1 AND deleted_at IS NULL", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound(domain.EntityProduct, id)
	}
	return p, classify(err, "get product", true)
}

func (db *DB) LoadProduct(ctx context.Context, id int64) (domain.Product, bool, error) {
	p, err := scanProduct(db.pool.QueryRow(ctx, "SELECT "+productCols+" FROM products WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, classify(err, "load product", true)
	}
	return p, true, nil
}

func insertOutbox(ctx context.Context, tx pgx.Tx, e domain.Entity, id int64, version, now time.Time) error {
	_, err := tx.Exec(ctx, "INSERT INTO outbox (entity, entity_id, version, created_at) VALUES ($1, $2, $3, $4)", string(e), id, version, now)
	return err
}

func (db *DB) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	p := c.Apply(domain.Product{})
	now := db.clock()
	p.CreatedAt, p.UpdatedAt = now, now
	err := db.inTx(ctx, "create product", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO products (id, name, description, price, created_at, updated_at)
			VALUES (nextval('products_id_seq'), $1, $2, $3::numeric, $4, $4) RETURNING id`,
			p.Name, p.Description, p.Price.String(), now).Scan(&p.ID)
		if err != nil {
			return classify(err, "create product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, p.ID, now, now)
	})
	if err != nil {
		return domain.Product{}, err
	}
	return p, nil
}

func (db *DB) lockLiveProduct(ctx context.Context, tx pgx.Tx, id int64) (domain.Product, error) {
	p, err := scanProduct(tx.QueryRow(ctx, "SELECT "+productCols+" FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound(domain.EntityProduct, id)
	}
	return p, classify(err, "lock product", true)
}

func (db *DB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error) {
	var p domain.Product
	err := db.inTx(ctx, "update product", func(tx pgx.Tx) error {
		prev, err := db.lockLiveProduct(ctx, tx, id)
		if err != nil {
			return err
		}
		p = c.Apply(prev)
		p.UpdatedAt = domain.NextVersion(db.now(), prev.UpdatedAt)
		if _, err := tx.Exec(ctx, "UPDATE products SET name = $2, description = $3, price = $4::numeric, updated_at = $5 WHERE id = $1",
			id, p.Name, p.Description, p.Price.String(), p.UpdatedAt); err != nil {
			return classify(err, "update product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, id, p.UpdatedAt, db.clock())
	})
	if err != nil {
		return domain.Product{}, err
	}
	return p, nil
}

func (db *DB) DeleteProduct(ctx context.Context, id int64) error {
	return db.inTx(ctx, "delete product", func(tx pgx.Tx) error {
		prev, err := db.lockLiveProduct(ctx, tx, id)
		if err != nil {
			return err
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		if _, err := tx.Exec(ctx, "UPDATE products SET deleted_at = $2, updated_at = $2 WHERE id = $1", id, v); err != nil {
			return classify(err, "delete product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, id, v, db.clock())
	})
}

// putOutcome decides what a sync write does to a target row.
func putOutcome(exists bool, targetUpdated time.Time, targetDeleted bool, srcUpdated time.Time, srcDeleted, overwriteTie bool) store.PutResult {
	switch {
	case !exists:
		return store.PutCreated
	case targetUpdated.Before(srcUpdated) || (targetUpdated.Equal(srcUpdated) && overwriteTie):
		if srcDeleted && !targetDeleted {
			return store.PutDeleted
		}
		return store.PutUpdated
	default:
		return store.PutUnchanged
	}
}

func (db *DB) PutProduct(ctx context.Context, p domain.Product, overwriteTie bool) (store.PutResult, error) {
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = domain.Millis(p.CreatedAt), domain.Millis(p.UpdatedAt), millisPtr(p.DeletedAt)
	var res store.PutResult
	err := db.inTx(ctx, "put product", func(tx pgx.Tx) error {
		for {
			var (
				updated time.Time
				deleted *time.Time
			)
			err := tx.QueryRow(ctx, "SELECT updated_at, deleted_at FROM products WHERE id = $1 FOR UPDATE", p.ID).Scan(&updated, &deleted)
			exists := err == nil
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return classify(err, "put product", true)
			}
			res = putOutcome(exists, updated, deleted != nil, p.UpdatedAt, p.Deleted(), overwriteTie)
			switch res {
			case store.PutUnchanged:
				return nil
			case store.PutCreated:
				// ON CONFLICT: a concurrent writer may insert the id first;
				// then look again, now finding (and locking) its row.
				tag, err := tx.Exec(ctx, `INSERT INTO products (id, name, description, price, created_at, updated_at, deleted_at)
					VALUES ($1, $2, $3, $4::numeric, $5, $6, $7) ON CONFLICT (id) DO NOTHING`,
					p.ID, p.Name, p.Description, p.Price.String(), p.CreatedAt, p.UpdatedAt, p.DeletedAt)
				if err != nil {
					return classify(err, "put product", true)
				}
				if tag.RowsAffected() == 0 {
					continue
				}
				return nil
			default:
				_, err := tx.Exec(ctx, `UPDATE products SET name = $2, description = $3, price = $4::numeric,
					created_at = $5, updated_at = $6, deleted_at = $7 WHERE id = $1`,
					p.ID, p.Name, p.Description, p.Price.String(), p.CreatedAt, p.UpdatedAt, p.DeletedAt)
				return classify(err, "put product", true)
			}
		}
	})
	if err != nil {
		return "", err
	}
	return res, nil
}
