package mssql

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Prices leave the server as text so they never pass through float64.
const productCols = "id, name, description, CONVERT(VARCHAR(20), price), created_at, updated_at, deleted_at"

type scanner interface{ Scan(dest ...any) error }

func scanProduct(row scanner) (domain.Product, error) {
	var (
		p       domain.Product
		price   string
		deleted sql.NullTime
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &price, &p.CreatedAt, &p.UpdatedAt, &deleted); err != nil {
		return p, err
	}
	m, err := domain.ParseMoney(price)
	if err != nil {
		return p, domain.Wrap(domain.KindInternal, err, "sqlserver: unreadable price "+price)
	}
	p.Price = m
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = utc(p.CreatedAt), utc(p.UpdatedAt), nullTime(deleted)
	return p, nil
}

const userCols = "id, name, email, created_at, updated_at, deleted_at"

func scanUser(row scanner) (domain.User, error) {
	var (
		u       domain.User
		deleted sql.NullTime
	)
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt, &u.UpdatedAt, &deleted); err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt, u.DeletedAt = utc(u.CreatedAt), utc(u.UpdatedAt), nullTime(deleted)
	return u, nil
}

// utc reads a DATETIME2 (which has no zone, and holds UTC) as UTC.
func utc(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
}

func nullTime(t sql.NullTime) *time.Time {
	if !t.Valid {
		return nil
	}
	u := utc(t.Time)
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

func queryList[T any](ctx context.Context, db *sql.DB, what, query string, scan func(scanner) (T, error), args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
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

func (db *DB) ListProducts(ctx context.Context, p store.Page) ([]domain.Product, error) {
	return queryList(ctx, db.db, "list products",
		"SELECT TOP (@p2) "+productCols+" FROM dbo.products WHERE deleted_at IS NULL AND id > @p1 ORDER BY id",
		scanProduct, p.After, limitOf(p.Limit))
}

func (db *DB) ListUsers(ctx context.Context, p store.Page) ([]domain.User, error) {
	return queryList(ctx, db.db, "list users",
		"SELECT TOP (@p2) "+userCols+" FROM dbo.users WHERE deleted_at IS NULL AND id > @p1 ORDER BY id",
		scanUser, p.After, limitOf(p.Limit))
}

func getOne[T any](ctx context.Context, db *sql.DB, e domain.Entity, id int64, query string, scan func(scanner) (T, error)) (T, bool, error) {
	v, err := scan(db.QueryRowContext(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, false, nil
	}
	if err != nil {
		return v, false, classify(err, "read "+string(e), true)
	}
	return v, true, nil
}

func (db *DB) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	p, ok, err := getOne(ctx, db.db, domain.EntityProduct, id, "SELECT "+productCols+" FROM dbo.products WHERE id = @p1 AND deleted_at IS NULL", scanProduct)
	if err == nil && !ok {
		err = notFound(domain.EntityProduct, id)
	}
	return p, err
}

func (db *DB) LoadProduct(ctx context.Context, id int64) (domain.Product, bool, error) {
	return getOne(ctx, db.db, domain.EntityProduct, id, "SELECT "+productCols+" FROM dbo.products WHERE id = @p1", scanProduct)
}

func (db *DB) GetUser(ctx context.Context, id int64) (domain.User, error) {
	u, ok, err := getOne(ctx, db.db, domain.EntityUser, id, "SELECT "+userCols+" FROM dbo.users WHERE id = @p1 AND deleted_at IS NULL", scanUser)
	if err == nil && !ok {
		err = notFound(domain.EntityUser, id)
	}
	return u, err
}

func (db *DB) LoadUser(ctx context.Context, id int64) (domain.User, bool, error) {
	return getOne(ctx, db.db, domain.EntityUser, id, "SELECT "+userCols+" FROM dbo.users WHERE id = @p1", scanUser)
}

func insertOutbox(ctx context.Context, tx *sql.Tx, e domain.Entity, id int64, version, now time.Time) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO dbo.outbox (entity, entity_id, version, created_at) VALUES (@p1, @p2, @p3, @p4)",
		string(e), id, dt(version), dt(now))
	return err
}

func (db *DB) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	p := c.Apply(domain.Product{})
	now := db.clock()
	p.CreatedAt, p.UpdatedAt = now, now
	err := db.inTx(ctx, "create product", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO dbo.products (id, name, description, price, created_at, updated_at)
			OUTPUT INSERTED.id
			VALUES (NEXT VALUE FOR dbo.products_id_seq, @p1, @p2, CAST(@p3 AS DECIMAL(10,2)), @p4, @p4)`,
			p.Name, p.Description, p.Price.String(), dt(now)).Scan(&p.ID)
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

func (db *DB) CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error) {
	u := c.Apply(domain.User{})
	now := db.clock()
	u.CreatedAt, u.UpdatedAt = now, now
	err := db.inTx(ctx, "create user", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO dbo.users (id, name, email, created_at, updated_at)
			OUTPUT INSERTED.id
			VALUES (NEXT VALUE FOR dbo.users_id_seq, @p1, @p2, @p3, @p3)`,
			u.Name, u.Email, dt(now)).Scan(&u.ID)
		if err != nil {
			return classify(err, "create user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, u.ID, now, now)
	})
	if err != nil {
		return domain.User{}, err
	}
	return u, nil
}

// lockLive reads a live row under an update lock held to the end of the
// transaction, so concurrent changes of one row serialise.
func lockLive[T any](ctx context.Context, tx *sql.Tx, e domain.Entity, id int64, query string, scan func(scanner) (T, error)) (T, error) {
	v, err := scan(tx.QueryRowContext(ctx, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, notFound(e, id)
	}
	return v, classify(err, "lock "+string(e), true)
}

func (db *DB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error) {
	var p domain.Product
	err := db.inTx(ctx, "update product", func(tx *sql.Tx) error {
		prev, err := lockLive(ctx, tx, domain.EntityProduct, id,
			"SELECT "+productCols+" FROM dbo.products WITH (UPDLOCK, ROWLOCK) WHERE id = @p1 AND deleted_at IS NULL", scanProduct)
		if err != nil {
			return err
		}
		p = c.Apply(prev)
		p.UpdatedAt = domain.NextVersion(db.now(), prev.UpdatedAt)
		if _, err := tx.ExecContext(ctx, `UPDATE dbo.products SET name = @p2, description = @p3, price = CAST(@p4 AS DECIMAL(10,2)), updated_at = @p5 WHERE id = @p1`,
			id, p.Name, p.Description, p.Price.String(), dt(p.UpdatedAt)); err != nil {
			return classify(err, "update product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, id, p.UpdatedAt, db.clock())
	})
	if err != nil {
		return domain.Product{}, err
	}
	return p, nil
}

func (db *DB) UpdateUser(ctx context.Context, id int64, c domain.UserChange) (domain.User, error) {
	var u domain.User
	err := db.inTx(ctx, "update user", func(tx *sql.Tx) error {
		prev, err := lockLive(ctx, tx, domain.EntityUser, id,
			"SELECT "+userCols+" FROM dbo.users WITH (UPDLOCK, ROWLOCK) WHERE id = @p1 AND deleted_at IS NULL", scanUser)
		if err != nil {
			return err
		}
		u = c.Apply(prev)
		u.UpdatedAt = domain.NextVersion(db.now(), prev.UpdatedAt)
		if _, err := tx.ExecContext(ctx, `UPDATE dbo.users SET name = @p2, email = @p3, updated_at = @p4 WHERE id = @p1`,
			id, u.Name, u.Email, dt(u.UpdatedAt)); err != nil {
			return classify(err, "update user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, id, u.UpdatedAt, db.clock())
	})
	if err != nil {
		return domain.User{}, err
	}
	return u, nil
}

func (db *DB) DeleteProduct(ctx context.Context, id int64) error {
	return db.tombstone(ctx, domain.EntityProduct, "dbo.products", id)
}

func (db *DB) DeleteUser(ctx context.Context, id int64) error {
	return db.tombstone(ctx, domain.EntityUser, "dbo.users", id)
}

// tombstone sets deleted_at and bumps updated_at of a live row; table is one
// of our constants, never input.
func (db *DB) tombstone(ctx context.Context, e domain.Entity, table string, id int64) error {
	return db.inTx(ctx, "delete "+string(e), func(tx *sql.Tx) error {
		var prev time.Time
		err := tx.QueryRowContext(ctx, "SELECT updated_at FROM "+table+" WITH (UPDLOCK, ROWLOCK) WHERE id = @p1 AND deleted_at IS NULL", id).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(e, id)
		}
		if err != nil {
			return classify(err, "delete "+string(e), true)
		}
		v := domain.NextVersion(db.now(), utc(prev))
		if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET deleted_at = @p2, updated_at = @p2 WHERE id = @p1", id, dt(v)); err != nil {
			return classify(err, "delete "+string(e), true)
		}
		return insertOutbox(ctx, tx, e, id, v, db.clock())
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

// put locks the target row, or the gap where it would be (UPDLOCK,
// HOLDLOCK: a concurrent put of the same id waits), decides, and writes.
func (db *DB) put(ctx context.Context, e domain.Entity, table string, id int64, updated time.Time, deleted, overwriteTie bool,
	insert, update func(tx *sql.Tx) error) (store.PutResult, error) {
	var res store.PutResult
	err := db.inTx(ctx, "put "+string(e), func(tx *sql.Tx) error {
		var (
			prev        time.Time
			prevDeleted sql.NullTime
		)
		err := tx.QueryRowContext(ctx, "SELECT updated_at, deleted_at FROM "+table+" WITH (UPDLOCK, HOLDLOCK) WHERE id = @p1", id).Scan(&prev, &prevDeleted)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return classify(err, "put "+string(e), true)
		}
		res = putOutcome(err == nil, utc(prev), prevDeleted.Valid, updated, deleted, overwriteTie)
		switch res {
		case store.PutUnchanged:
			return nil
		case store.PutCreated:
			err = insert(tx)
		default:
			err = update(tx)
		}
		return classify(err, "put "+string(e), true)
	})
	if err != nil {
		return "", err
	}
	return res, nil
}

func (db *DB) PutProduct(ctx context.Context, p domain.Product, overwriteTie bool) (store.PutResult, error) {
	p.UpdatedAt = domain.Millis(p.UpdatedAt)
	args := []any{p.ID, p.Name, p.Description, p.Price.String(), dt(p.CreatedAt), dt(p.UpdatedAt), dtPtr(p.DeletedAt)}
	return db.put(ctx, domain.EntityProduct, "dbo.products", p.ID, p.UpdatedAt, p.Deleted(), overwriteTie,
		func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO dbo.products (id, name, description, price, created_at, updated_at, deleted_at)
				VALUES (@p1, @p2, @p3, CAST(@p4 AS DECIMAL(10,2)), @p5, @p6, @p7)`, args...)
			return err
		},
		func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE dbo.products SET name = @p2, description = @p3, price = CAST(@p4 AS DECIMAL(10,2)),
				created_at = @p5, updated_at = @p6, deleted_at = @p7 WHERE id = @p1`, args...)
			return err
		})
}

func (db *DB) PutUser(ctx context.Context, u domain.User, overwriteTie bool) (store.PutResult, error) {
	u.UpdatedAt = domain.Millis(u.UpdatedAt)
	args := []any{u.ID, u.Name, u.Email, dt(u.CreatedAt), dt(u.UpdatedAt), dtPtr(u.DeletedAt)}
	// A duplicate live email fails the statement (Conflict) and the
	// transaction rolls back: nothing changes.
	return db.put(ctx, domain.EntityUser, "dbo.users", u.ID, u.UpdatedAt, u.Deleted(), overwriteTie,
		func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO dbo.users (id, name, email, created_at, updated_at, deleted_at)
				VALUES (@p1, @p2, @p3, @p4, @p5, @p6)`, args...)
			return err
		},
		func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE dbo.users SET name = @p2, email = @p3, created_at = @p4, updated_at = @p5, deleted_at = @p6
				WHERE id = @p1`, args...)
			return err
		})
}
