package mssql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf16"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Prices leave the server as text so they never pass through float64.
const productCols = "id, name, description, CONVERT(VARCHAR(20), price), created_at, updated_at, deleted_at, ver_p, ver_f, name_at, description_at, price_at, jump_from, jump_to"

type scanner interface{ Scan(dest ...any) error }

func scanProduct(row scanner) (domain.Product, error) {
	var (
		p       domain.Product
		price   string
		deleted sql.NullTime
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &price, &p.CreatedAt, &p.UpdatedAt, &deleted,
		&p.Ver.P, &p.Ver.F, &p.NameAt, &p.DescriptionAt, &p.PriceAt, &p.Jump.From, &p.Jump.To); err != nil {
		return p, err
	}
	m, err := domain.ParseMoney(price)
	if err != nil {
		return p, domain.Wrap(domain.KindInternal, err, "sqlserver: unreadable price "+price)
	}
	p.Price = m
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = utc(p.CreatedAt), utc(p.UpdatedAt), nullTime(deleted)
	p.NameAt, p.DescriptionAt, p.PriceAt = utc(p.NameAt), utc(p.DescriptionAt), utc(p.PriceAt)
	return p, nil
}

const userCols = "id, name, email, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, email_at, jump_from, jump_to"

func scanUser(row scanner) (domain.User, error) {
	var (
		u       domain.User
		deleted sql.NullTime
	)
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt, &u.UpdatedAt, &deleted, &u.Ver.P, &u.Ver.F, &u.NameAt, &u.EmailAt, &u.Jump.From, &u.Jump.To); err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt, u.DeletedAt = utc(u.CreatedAt), utc(u.UpdatedAt), nullTime(deleted)
	u.NameAt, u.EmailAt = utc(u.NameAt), utc(u.EmailAt)
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

// limitOf is a page size as a BIGINT parameter (a Go int would be declared
// int or bigint depending on the platform).
func limitOf(n int) int64 {
	if n <= 0 {
		return 100
	}
	return int64(n)
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

// loadProductsSQL reads the products whose ids the JSON array @p1 lists:
// one text for any number of ids.
const loadProductsSQL = "SELECT " + productCols + " FROM dbo.products WHERE id IN (SELECT j.id FROM OPENJSON(@p1) WITH (id BIGINT '$') AS j)"

// LoadProducts reads all ids with one statement.
func (db *DB) LoadProducts(ctx context.Context, ids []int64) (map[int64]domain.Product, error) {
	out := make(map[int64]domain.Product, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	ps, err := queryList(ctx, db.db, "load products", loadProductsSQL, scanProduct, idsParam(ids))
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		out[p.ID] = p
	}
	return out, nil
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

func insertOutbox(ctx context.Context, tx *sql.Tx, e domain.Entity, id, counter int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, "INSERT INTO dbo.outbox (entity, entity_id, counter, created_at) VALUES (@p1, @p2, @p3, @p4)",
		str(string(e)), id, counter, dt(now))
	return err
}

func (db *DB) primary() bool { return db.role == store.RolePrimary }

func (db *DB) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	now := db.clock()
	p := c.ApplyAt(domain.Product{}, now)
	p.CreatedAt, p.UpdatedAt = now, now
	p.Ver, _ = p.Ver.Next(db.primary(), db.floor, p.Jump)
	err := db.inTx(ctx, "create product", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO dbo.products (id, name, description, price, created_at, updated_at, ver_p, ver_f, name_at, description_at, price_at)
			OUTPUT INSERTED.id
			VALUES (NEXT VALUE FOR dbo.products_id_seq, @p1, @p2, CAST(@p3 AS DECIMAL(10,2)), @p4, @p4, @p5, @p6, @p4, @p4, @p4)`,
			str(p.Name), str(p.Description), str(p.Price.String()), dt(now), p.Ver.P, p.Ver.F).Scan(&p.ID)
		if err != nil {
			return classify(err, "create product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, p.ID, store.Own(db.role, p.Ver), now)
	})
	if err != nil {
		return domain.Product{}, err
	}
	return p, nil
}

func (db *DB) CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error) {
	now := db.clock()
	u := c.ApplyAt(domain.User{}, now)
	u.CreatedAt, u.UpdatedAt = now, now
	u.Ver, _ = u.Ver.Next(db.primary(), db.floor, u.Jump)
	err := db.inTx(ctx, "create user", func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO dbo.users (id, name, email, email_key, created_at, updated_at, ver_p, ver_f, name_at, email_at)
			OUTPUT INSERTED.id
			VALUES (NEXT VALUE FOR dbo.users_id_seq, @p1, @p2, @p3, @p4, @p4, @p5, @p6, @p4, @p4)`,
			str(u.Name), str(u.Email), str(domain.EmailKey(u.Email)), dt(now), u.Ver.P, u.Ver.F).Scan(&u.ID)
		if err != nil {
			return classify(err, "create user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, u.ID, store.Own(db.role, u.Ver), now)
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

// UpdateProduct changes the live row under its lock: this side's vector
// entry counts the write, and only the fields whose value changes get the
// write's time.
func (db *DB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error) {
	var p domain.Product
	err := db.inTx(ctx, "update product", func(tx *sql.Tx) error {
		prev, err := lockLive(ctx, tx, domain.EntityProduct, id,
			"SELECT "+productCols+" FROM dbo.products WITH (UPDLOCK, ROWLOCK) WHERE id = @p1 AND deleted_at IS NULL", scanProduct)
		if err != nil {
			return err
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		p = c.ApplyAt(prev, v)
		p.UpdatedAt = v
		p.Ver, p.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		if _, err := tx.ExecContext(ctx, `UPDATE dbo.products SET name = @p2, description = @p3, price = CAST(@p4 AS DECIMAL(10,2)), updated_at = @p5,
			ver_p = @p6, ver_f = @p7, name_at = @p8, description_at = @p9, price_at = @p10, jump_from = @p11, jump_to = @p12 WHERE id = @p1`,
			id, str(p.Name), str(p.Description), str(p.Price.String()), dt(p.UpdatedAt), p.Ver.P, p.Ver.F, dt(p.NameAt), dt(p.DescriptionAt), dt(p.PriceAt), p.Jump.From, p.Jump.To); err != nil {
			return classify(err, "update product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, id, store.Own(db.role, p.Ver), db.clock())
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
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		u = c.ApplyAt(prev, v)
		u.UpdatedAt = v
		u.Ver, u.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		if _, err := tx.ExecContext(ctx, `UPDATE dbo.users SET name = @p2, email = @p3, email_key = @p4, updated_at = @p5,
			ver_p = @p6, ver_f = @p7, name_at = @p8, email_at = @p9, jump_from = @p10, jump_to = @p11 WHERE id = @p1`,
			id, str(u.Name), str(u.Email), str(domain.EmailKey(u.Email)), dt(u.UpdatedAt), u.Ver.P, u.Ver.F, dt(u.NameAt), dt(u.EmailAt), u.Jump.From, u.Jump.To); err != nil {
			return classify(err, "update user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, id, store.Own(db.role, u.Ver), db.clock())
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

// tombstone sets deleted_at, bumps updated_at and counts the write in this
// side's vector entry; table is one of our constants, never input.
func (db *DB) tombstone(ctx context.Context, e domain.Entity, table string, id int64) error {
	return db.inTx(ctx, "delete "+string(e), func(tx *sql.Tx) error {
		var (
			prev time.Time
			ver  domain.Vector
			jump domain.Jump
		)
		err := tx.QueryRowContext(ctx, "SELECT updated_at, ver_p, ver_f, jump_from, jump_to FROM "+table+" WITH (UPDLOCK, ROWLOCK) WHERE id = @p1 AND deleted_at IS NULL", id).
			Scan(&prev, &ver.P, &ver.F, &jump.From, &jump.To)
		if errors.Is(err, sql.ErrNoRows) {
			return notFound(e, id)
		}
		if err != nil {
			return classify(err, "delete "+string(e), true)
		}
		v := domain.NextVersion(db.now(), utc(prev))
		ver, jump = ver.Next(db.primary(), db.floor, jump)
		if _, err := tx.ExecContext(ctx, "UPDATE "+table+" SET deleted_at = @p2, updated_at = @p2, ver_p = @p3, ver_f = @p4, jump_from = @p5, jump_to = @p6 WHERE id = @p1",
			id, dt(v), ver.P, ver.F, jump.From, jump.To); err != nil {
			return classify(err, "delete "+string(e), true)
		}
		return insertOutbox(ctx, tx, e, id, store.Own(db.role, ver), db.clock())
	})
}

func changed(table string, id int64) error {
	return domain.Wrap(domain.KindUnavailable, store.ErrChanged, fmt.Sprintf("%s %d changed during sync; it is merged again", table, id))
}

// put is a compare-and-set sync write: it locks the target row, or the gap
// where it would be (UPDLOCK, HOLDLOCK: a concurrent put of the same id
// waits), checks it still holds expect (nil: still absent), and writes.
func (db *DB) put(ctx context.Context, e domain.Entity, table string, id int64, expect *domain.Vector, deleted bool,
	insert, update func(tx *sql.Tx) error) (store.PutResult, error) {
	var res store.PutResult
	err := db.inTx(ctx, "put "+string(e), func(tx *sql.Tx) error {
		var (
			ver         domain.Vector
			prevDeleted sql.NullTime
		)
		err := tx.QueryRowContext(ctx, "SELECT ver_p, ver_f, deleted_at FROM "+table+" WITH (UPDLOCK, HOLDLOCK) WHERE id = @p1", id).Scan(&ver.P, &ver.F, &prevDeleted)
		exists := err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return classify(err, "put "+string(e), true)
		}
		if exists != (expect != nil) || (exists && *expect != ver) {
			return changed(table, id)
		}
		switch {
		case !exists:
			res = store.PutCreated
			if err := insert(tx); err != nil {
				return classify(err, "put "+string(e), true)
			}
			return classify(db.advanceSequence(ctx, tx, e, id), "put "+string(e), true)
		case deleted && !prevDeleted.Valid:
			res = store.PutDeleted
		default:
			res = store.PutUpdated
		}
		return classify(update(tx), "put "+string(e), true)
	})
	if err != nil {
		return "", err
	}
	return res, nil
}

func (db *DB) PutProduct(ctx context.Context, p domain.Product, expect *domain.Vector) (store.PutResult, error) {
	args := []any{p.ID, str(p.Name), str(p.Description), str(p.Price.String()), dt(p.CreatedAt), dt(p.UpdatedAt), dtPtr(p.DeletedAt),
		p.Ver.P, p.Ver.F, dt(p.NameAt), dt(p.DescriptionAt), dt(p.PriceAt)}
	return db.put(ctx, domain.EntityProduct, "dbo.products", p.ID, expect, p.Deleted(),
		func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO dbo.products (id, name, description, price, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, description_at, price_at)
				VALUES (@p1, @p2, @p3, CAST(@p4 AS DECIMAL(10,2)), @p5, @p6, @p7, @p8, @p9, @p10, @p11, @p12)`, args...)
			return err
		},
		func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `UPDATE dbo.products SET name = @p2, description = @p3, price = CAST(@p4 AS DECIMAL(10,2)),
				created_at = @p5, updated_at = @p6, deleted_at = @p7, ver_p = @p8, ver_f = @p9, name_at = @p10, description_at = @p11, price_at = @p12
				WHERE id = @p1`, args...)
			return err
		})
}

// PutUser: a duplicate live email key fails the statement (Conflict) and the
// transaction rolls back: nothing changes.
func (db *DB) PutUser(ctx context.Context, u domain.User, expect *domain.Vector) (store.PutResult, error) {
	res, err := db.PutUsers(ctx, []store.UserPut{{User: u, Expect: expect}})
	if err != nil {
		return "", err
	}
	return res[0], nil
}

// emailParking is an email key no real email has (no @): rows of a joint
// put park their key there first, so a swap does not trip the unique index
// on its way (SQL Server checks it per statement).
func emailParking(id int64) string { return "#" + strconv.FormatInt(id, 10) }

func (db *DB) PutUsers(ctx context.Context, puts []store.UserPut) ([]store.PutResult, error) {
	if err := store.CheckUserPuts(puts); err != nil {
		return nil, err
	}
	res := make([]store.PutResult, len(puts))
	err := db.inTx(ctx, "put user", func(tx *sql.Tx) error {
		exists := make([]bool, len(puts))
		for _, i := range store.LockOrder(puts) {
			p := puts[i]
			var (
				ver         domain.Vector
				prevDeleted sql.NullTime
			)
			err := tx.QueryRowContext(ctx, "SELECT ver_p, ver_f, deleted_at FROM dbo.users WITH (UPDLOCK, HOLDLOCK) WHERE id = @p1", p.User.ID).Scan(&ver.P, &ver.F, &prevDeleted)
			ex := err == nil
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return classify(err, "put user", true)
			}
			if ex != (p.Expect != nil) || (ex && *p.Expect != ver) {
				return changed("dbo.users", p.User.ID)
			}
			exists[i] = ex
			switch {
			case !ex:
				res[i] = store.PutCreated
			case p.User.Deleted() && !prevDeleted.Valid:
				res[i] = store.PutDeleted
			default:
				res[i] = store.PutUpdated
			}
		}
		if len(puts) > 1 {
			for i, p := range puts {
				if exists[i] {
					if _, err := tx.ExecContext(ctx, "UPDATE dbo.users SET email_key = @p2 WHERE id = @p1", p.User.ID, str(emailParking(p.User.ID))); err != nil {
						return classify(err, "put user", true)
					}
				}
			}
		}
		for i, p := range puts {
			u := p.User
			args := []any{u.ID, str(u.Name), str(u.Email), str(domain.EmailKey(u.Email)), dt(u.CreatedAt), dt(u.UpdatedAt), dtPtr(u.DeletedAt),
				u.Ver.P, u.Ver.F, dt(u.NameAt), dt(u.EmailAt)}
			if exists[i] {
				if _, err := tx.ExecContext(ctx, `UPDATE dbo.users SET name = @p2, email = @p3, email_key = @p4, created_at = @p5, updated_at = @p6,
					deleted_at = @p7, ver_p = @p8, ver_f = @p9, name_at = @p10, email_at = @p11 WHERE id = @p1`, args...); err != nil {
					return classify(err, "put user", true)
				}
				continue
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO dbo.users (id, name, email, email_key, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, email_at)
				VALUES (@p1, @p2, @p3, @p4, @p5, @p6, @p7, @p8, @p9, @p10, @p11)`, args...); err != nil {
				return classify(err, "put user", true)
			}
			if err := db.advanceSequence(ctx, tx, domain.EntityUser, u.ID); err != nil {
				return classify(err, "put user", true)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// emailKeyMax is the length of dbo.users.email_key (NVARCHAR(254)).
const emailKeyMax = 254

func (db *DB) UserByEmail(ctx context.Context, email string) (domain.User, bool, error) {
	key := domain.EmailKey(email)
	if len(utf16.Encode([]rune(key))) > emailKeyMax {
		return domain.User{}, false, nil // longer than any stored key
	}
	u, err := scanUser(db.db.QueryRowContext(ctx, "SELECT "+userCols+" FROM dbo.users WHERE email_key = CAST(@p1 AS NVARCHAR(4000)) AND deleted_at IS NULL", str(key)))
	if errors.Is(err, sql.ErrNoRows) {
		return u, false, nil
	}
	if err != nil {
		return u, false, classify(err, "user by email", true)
	}
	return u, true, nil
}
