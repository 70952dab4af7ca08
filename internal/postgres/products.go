package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Prices leave the database as text so they never pass through float64.
const productCols = "id, name, description, price::text, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, description_at, price_at, jump_from, jump_to"

func scanProduct(row pgx.Row) (domain.Product, error) {
	var (
		p       domain.Product
		price   string
		deleted *time.Time
	)
	if err := row.Scan(&p.ID, &p.Name, &p.Description, &price, &p.CreatedAt, &p.UpdatedAt, &deleted,
		&p.Ver.P, &p.Ver.F, &p.NameAt, &p.DescriptionAt, &p.PriceAt, &p.Jump.From, &p.Jump.To); err != nil {
		return p, err
	}
	m, err := domain.ParseMoney(price)
	if err != nil {
		return p, domain.Wrap(domain.KindInternal, err, "postgres: unreadable price "+price)
	}
	p.Price = m
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC(), utcPtr(deleted)
	p.NameAt, p.DescriptionAt, p.PriceAt = p.NameAt.UTC(), p.DescriptionAt.UTC(), p.PriceAt.UTC()
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

func (db *DB) LoadProducts(ctx context.Context, ids []int64) (map[int64]domain.Product, error) {
	out := make(map[int64]domain.Product, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, "SELECT "+productCols+" FROM products WHERE id = ANY($1)", ids)
	if err != nil {
		return nil, classify(err, "load products", true)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, classify(err, "load products", true)
		}
		out[p.ID] = p
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "load products", true)
	}
	return out, nil
}

func insertOutbox(ctx context.Context, tx pgx.Tx, e domain.Entity, id, counter int64, now time.Time) error {
	_, err := tx.Exec(ctx, "INSERT INTO outbox (entity, entity_id, counter, created_at) VALUES ($1, $2, $3, $4)", string(e), id, counter, now)
	return err
}

func (db *DB) primary() bool { return db.role == store.RolePrimary }

func (db *DB) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	now := db.clock()
	p := c.ApplyAt(domain.Product{}, now)
	p.CreatedAt, p.UpdatedAt = now, now
	p.Ver, _ = p.Ver.Next(db.primary(), db.floor, p.Jump)
	err := db.inTx(ctx, "create product", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO products (id, name, description, price, created_at, updated_at, ver_p, ver_f, name_at, description_at, price_at)
			VALUES (nextval('products_id_seq'), $1, $2, $3::numeric, $4, $4, $5, $6, $4, $4, $4) RETURNING id`,
			p.Name, p.Description, p.Price.String(), now, p.Ver.P, p.Ver.F).Scan(&p.ID)
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

func (db *DB) lockLiveProduct(ctx context.Context, tx pgx.Tx, id int64) (domain.Product, error) {
	p, err := scanProduct(tx.QueryRow(ctx, "SELECT "+productCols+" FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound(domain.EntityProduct, id)
	}
	return p, classify(err, "lock product", true)
}

// UpdateProduct changes the live row under its lock: this side's vector
// entry counts the write, and only the fields whose value changes get the
// write's time.
func (db *DB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error) {
	var p domain.Product
	err := db.inTx(ctx, "update product", func(tx pgx.Tx) error {
		prev, err := db.lockLiveProduct(ctx, tx, id)
		if err != nil {
			return err
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		p = c.ApplyAt(prev, v)
		p.UpdatedAt = v
		p.Ver, p.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		if _, err := tx.Exec(ctx, `UPDATE products SET name = $2, description = $3, price = $4::numeric, updated_at = $5,
			ver_p = $6, ver_f = $7, name_at = $8, description_at = $9, price_at = $10, jump_from = $11, jump_to = $12 WHERE id = $1`,
			id, p.Name, p.Description, p.Price.String(), p.UpdatedAt, p.Ver.P, p.Ver.F, p.NameAt, p.DescriptionAt, p.PriceAt, p.Jump.From, p.Jump.To); err != nil {
			return classify(err, "update product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, id, store.Own(db.role, p.Ver), db.clock())
	})
	if err != nil {
		return domain.Product{}, err
	}
	return p, nil
}

// DeleteProduct turns the live row into a tombstone, counted in the vector
// like any write.
func (db *DB) DeleteProduct(ctx context.Context, id int64) error {
	return db.inTx(ctx, "delete product", func(tx pgx.Tx) error {
		prev, err := db.lockLiveProduct(ctx, tx, id)
		if err != nil {
			return err
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		ver, jump := prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		if _, err := tx.Exec(ctx, "UPDATE products SET deleted_at = $2, updated_at = $2, ver_p = $3, ver_f = $4, jump_from = $5, jump_to = $6 WHERE id = $1",
			id, v, ver.P, ver.F, jump.From, jump.To); err != nil {
			return classify(err, "delete product", true)
		}
		return insertOutbox(ctx, tx, domain.EntityProduct, id, store.Own(db.role, ver), db.clock())
	})
}

// lockForPut locks the target row of a sync write and checks it still
// holds expect (nil: still absent). It reports whether the row exists and
// whether it is live.
func lockForPut(ctx context.Context, tx pgx.Tx, tbl string, id int64, expect *domain.Vector) (exists, live bool, err error) {
	var (
		ver     domain.Vector
		deleted *time.Time
	)
	err = tx.QueryRow(ctx, "SELECT ver_p, ver_f, deleted_at FROM "+tbl+" WHERE id = $1 FOR UPDATE", id).Scan(&ver.P, &ver.F, &deleted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if expect != nil {
			return false, false, changed(tbl, id)
		}
		return false, false, nil
	case err != nil:
		return false, false, classify(err, "put", true)
	case expect == nil || *expect != ver:
		return true, deleted == nil, changed(tbl, id)
	}
	return true, deleted == nil, nil
}

func changed(tbl string, id int64) error {
	return domain.Wrap(domain.KindUnavailable, store.ErrChanged, fmt.Sprintf("%s %d changed during sync; it is merged again", tbl, id))
}

func putResult(exists, live, deleted bool) store.PutResult {
	switch {
	case !exists:
		return store.PutCreated
	case live && deleted:
		return store.PutDeleted
	}
	return store.PutUpdated
}

func (db *DB) PutProduct(ctx context.Context, p domain.Product, expect *domain.Vector) (store.PutResult, error) {
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = domain.Millis(p.CreatedAt), domain.Millis(p.UpdatedAt), millisPtr(p.DeletedAt)
	p.NameAt, p.DescriptionAt, p.PriceAt = domain.Millis(p.NameAt), domain.Millis(p.DescriptionAt), domain.Millis(p.PriceAt)
	var res store.PutResult
	err := db.inTx(ctx, "put product", func(tx pgx.Tx) error {
		exists, live, err := lockForPut(ctx, tx, "products", p.ID, expect)
		if err != nil {
			return err
		}
		res = putResult(exists, live, p.Deleted())
		args := []any{p.ID, p.Name, p.Description, p.Price.String(), p.CreatedAt, p.UpdatedAt, p.DeletedAt, p.Ver.P, p.Ver.F, p.NameAt, p.DescriptionAt, p.PriceAt}
		if exists {
			_, err := tx.Exec(ctx, `UPDATE products SET name = $2, description = $3, price = $4::numeric,
				created_at = $5, updated_at = $6, deleted_at = $7, ver_p = $8, ver_f = $9, name_at = $10, description_at = $11, price_at = $12
				WHERE id = $1`, args...)
			return classify(err, "put product", true)
		}
		// ON CONFLICT: a concurrent writer inserted the id first.
		tag, err := tx.Exec(ctx, `INSERT INTO products (id, name, description, price, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, description_at, price_at)
			VALUES ($1, $2, $3, $4::numeric, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING`, args...)
		if err != nil {
			return classify(err, "put product", true)
		}
		if tag.RowsAffected() == 0 {
			return changed("products", p.ID)
		}
		return classify(db.advanceSequence(ctx, tx, domain.EntityProduct, p.ID), "put product", true)
	})
	if err != nil {
		return "", err
	}
	return res, nil
}

// PutProducts locks the rows of all puts at once (in id order, as every
// batch does, so two batches never deadlock), compares each with its
// expected vector, then writes the ones that still match with one UPDATE
// and one INSERT over arrays, all in one transaction.
func (db *DB) PutProducts(ctx context.Context, puts []store.ProductPut) ([]store.PutResult, error) {
	out := make([]store.PutResult, len(puts))
	if len(puts) == 0 {
		return out, nil
	}
	if err := store.CheckProductPuts(puts); err != nil {
		return nil, err
	}
	ids := make([]int64, len(puts))
	at := make(map[int64]int, len(puts))
	for i, put := range puts {
		ids[i] = put.Product.ID
		at[ids[i]] = i
	}
	err := db.inTx(ctx, "put products", func(tx pgx.Tx) error {
		type current struct {
			id   int64
			ver  domain.Vector
			live bool
		}
		rows, _ := tx.Query(ctx, "SELECT id, ver_p, ver_f, deleted_at IS NULL FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE", ids)
		locked, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (current, error) {
			var c current
			return c, r.Scan(&c.id, &c.ver.P, &c.ver.F, &c.live)
		})
		if err != nil {
			return classify(err, "put products", true)
		}
		cur := make(map[int64]current, len(locked))
		for _, c := range locked {
			cur[c.id] = c
		}
		var upd, ins productArrays
		// In id order, as the rows were locked: two batches inserting the
		// same new ids then wait on each other instead of deadlocking.
		for _, i := range store.ProductLockOrder(puts) {
			put := puts[i]
			c, exists := cur[put.Product.ID]
			switch {
			case put.Expect == nil && exists, put.Expect != nil && (!exists || c.ver != *put.Expect):
				out[i] = store.PutChanged
			case exists:
				out[i] = putResult(true, c.live, put.Product.Deleted())
				upd.add(put.Product)
			default:
				out[i] = store.PutCreated
				ins.add(put.Product)
			}
		}
		if len(upd.id) > 0 {
			_, err := tx.Exec(ctx, `UPDATE products t SET name = u.name, description = u.description, price = u.price::numeric,
				created_at = u.created_at, updated_at = u.updated_at, deleted_at = u.deleted_at, ver_p = u.ver_p, ver_f = u.ver_f,
				name_at = u.name_at, description_at = u.description_at, price_at = u.price_at
				FROM `+productsUnnest+` WHERE t.id = u.id`, upd.args()...)
			if err != nil {
				return classify(err, "put products", true)
			}
		}
		if len(ins.id) == 0 {
			return nil
		}
		// ON CONFLICT: a concurrent writer inserted the id first.
		rows, _ = tx.Query(ctx, `INSERT INTO products (id, name, description, price, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, description_at, price_at)
			SELECT u.id, u.name, u.description, u.price::numeric, u.created_at, u.updated_at, u.deleted_at, u.ver_p, u.ver_f, u.name_at, u.description_at, u.price_at
			FROM `+productsUnnest+` ON CONFLICT (id) DO NOTHING RETURNING id`, ins.args()...)
		got, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return classify(err, "put products", true)
		}
		inserted := make(map[int64]bool, len(got))
		for _, id := range got {
			inserted[id] = true
		}
		var own int64 // the highest inserted id of this database's parity
		for _, id := range ins.id {
			if !inserted[id] {
				out[at[id]] = store.PutChanged
			} else if id%2 == idStart(db.role)%2 {
				own = max(own, id)
			}
		}
		if own == 0 {
			return nil
		}
		return classify(db.advanceSequence(ctx, tx, domain.EntityProduct, own), "put products", true)
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// productsUnnest reads productArrays.args as rows u.
const productsUnnest = `unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::timestamptz[],
	$8::bigint[], $9::bigint[], $10::timestamptz[], $11::timestamptz[], $12::timestamptz[])
	AS u(id, name, description, price, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, description_at, price_at)`

// productArrays holds products column by column, for productsUnnest.
type productArrays struct {
	id, verP, verF                            []int64
	name, description, price                  []string
	created, updated, nameAt, descAt, priceAt []time.Time
	deleted                                   []*time.Time
}

func (a *productArrays) add(p domain.Product) {
	a.id, a.verP, a.verF = append(a.id, p.ID), append(a.verP, p.Ver.P), append(a.verF, p.Ver.F)
	a.name, a.description, a.price = append(a.name, p.Name), append(a.description, p.Description), append(a.price, p.Price.String())
	a.created, a.updated = append(a.created, domain.Millis(p.CreatedAt)), append(a.updated, domain.Millis(p.UpdatedAt))
	a.deleted = append(a.deleted, millisPtr(p.DeletedAt))
	a.nameAt, a.descAt, a.priceAt = append(a.nameAt, domain.Millis(p.NameAt)), append(a.descAt, domain.Millis(p.DescriptionAt)), append(a.priceAt, domain.Millis(p.PriceAt))
}

func (a *productArrays) args() []any {
	return []any{a.id, a.name, a.description, a.price, a.created, a.updated, a.deleted, a.verP, a.verF, a.nameAt, a.descAt, a.priceAt}
}
