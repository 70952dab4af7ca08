package mssql

import (
	"context"
	"database/sql"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// putProductsLockSQL locks the rows (or, absent, their keys' ranges) of the
// ids the JSON array @p1 lists and reads their vectors. HOLDLOCK keeps the
// range locks of absent ids to the end of the transaction, so no one can
// insert them meanwhile and the INSERT below needs no conflict handling.
// INNER LOOP JOIN with OPENJSON first reads the ids in array order (the
// caller sorts them) and seeks each (FORCESEEK: never a scan under
// UPDLOCK, HOLDLOCK, which would lock the whole table), so two batches lock
// their rows in one order and wait for each other instead of deadlocking
// (and a deadlock that happens anyway is retried once, 1205).
const putProductsLockSQL = `SELECT t.id, t.ver_p, t.ver_f, CAST(CASE WHEN t.deleted_at IS NULL THEN 1 ELSE 0 END AS BIT)
FROM OPENJSON(@p1) WITH (id BIGINT '$') AS j
INNER LOOP JOIN dbo.products AS t WITH (UPDLOCK, HOLDLOCK, FORCESEEK) ON t.id = j.id`

// productRowsJSON reads the rows of a JSON array of productRow as j. Strings
// are NVARCHAR(MAX) here so a value too long for its column fails the write
// (2628, KindInvalid) instead of being cut; a price beyond DECIMAL(10,2)
// fails the CAST (8115, KindInvalid); times are ISO 8601, style 126.
const productRowsJSON = `OPENJSON(@p1) WITH (id BIGINT '$.id', name NVARCHAR(MAX) '$.name', description NVARCHAR(MAX) '$.description',
	price NVARCHAR(40) '$.price', created_at NVARCHAR(30) '$.createdAt', updated_at NVARCHAR(30) '$.updatedAt', deleted_at NVARCHAR(30) '$.deletedAt',
	ver_p BIGINT '$.verP', ver_f BIGINT '$.verF', name_at NVARCHAR(30) '$.nameAt', description_at NVARCHAR(30) '$.descriptionAt', price_at NVARCHAR(30) '$.priceAt') AS j`

// putProductsUpdateSQL is driven from the JSON like the lock read before it:
// OPENJSON outer, each row sought by key (INNER LOOP JOIN, FORCESEEK). With a
// scan plan (a small table, stale statistics) the UPDATE would take update
// locks on every row it reads, and two concurrent batches, or a batch and an
// API write, would deadlock on rows neither writes.
const putProductsUpdateSQL = `UPDATE t SET name = j.name, description = j.description, price = CAST(j.price AS DECIMAL(10,2)),
	created_at = CONVERT(DATETIME2(3), j.created_at, 126), updated_at = CONVERT(DATETIME2(3), j.updated_at, 126),
	deleted_at = CONVERT(DATETIME2(3), j.deleted_at, 126), ver_p = j.ver_p, ver_f = j.ver_f,
	name_at = CONVERT(DATETIME2(3), j.name_at, 126), description_at = CONVERT(DATETIME2(3), j.description_at, 126),
	price_at = CONVERT(DATETIME2(3), j.price_at, 126)
FROM ` + productRowsJSON + `
INNER LOOP JOIN dbo.products AS t WITH (FORCESEEK) ON t.id = j.id`

const putProductsInsertSQL = `INSERT INTO dbo.products (id, name, description, price, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, description_at, price_at)
SELECT j.id, j.name, j.description, CAST(j.price AS DECIMAL(10,2)),
	CONVERT(DATETIME2(3), j.created_at, 126), CONVERT(DATETIME2(3), j.updated_at, 126), CONVERT(DATETIME2(3), j.deleted_at, 126),
	j.ver_p, j.ver_f, CONVERT(DATETIME2(3), j.name_at, 126), CONVERT(DATETIME2(3), j.description_at, 126), CONVERT(DATETIME2(3), j.price_at, 126)
FROM ` + productRowsJSON

// productRow is a product as productRowsJSON reads it.
type productRow struct {
	ID            int64   `json:"id"`
	Name          string  `json:"name"`
	Description   string  `json:"description"`
	Price         string  `json:"price"`
	CreatedAt     string  `json:"createdAt"`
	UpdatedAt     string  `json:"updatedAt"`
	DeletedAt     *string `json:"deletedAt"`
	VerP          int64   `json:"verP"`
	VerF          int64   `json:"verF"`
	NameAt        string  `json:"nameAt"`
	DescriptionAt string  `json:"descriptionAt"`
	PriceAt       string  `json:"priceAt"`
}

func rowOf(p domain.Product) productRow {
	return productRow{ID: p.ID, Name: p.Name, Description: p.Description, Price: p.Price.String(),
		CreatedAt: jsonTime(p.CreatedAt), UpdatedAt: jsonTime(p.UpdatedAt), DeletedAt: jsonTimePtr(p.DeletedAt),
		VerP: p.Ver.P, VerF: p.Ver.F, NameAt: jsonTime(p.NameAt), DescriptionAt: jsonTime(p.DescriptionAt), PriceAt: jsonTime(p.PriceAt)}
}

// PutProducts is the PostgreSQL adapter's PutProducts in T-SQL: it refuses a
// batch naming an id twice before touching the database, then in one
// transaction locks every put's row (in id order), compares each with its
// expected vector, and writes the ones that still match with one UPDATE and
// one INSERT, each reading its rows from one JSON parameter. Any error rolls
// the whole batch back (XACT_ABORT): nothing is written.
func (db *DB) PutProducts(ctx context.Context, puts []store.ProductPut) ([]store.PutResult, error) {
	if err := store.CheckProductPuts(puts); err != nil {
		return nil, err
	}
	out := make([]store.PutResult, len(puts))
	if len(puts) == 0 {
		return out, nil
	}
	order := store.ProductLockOrder(puts)
	ids := make([]int64, len(order))
	for k, i := range order {
		ids[k] = puts[i].Product.ID
	}
	err := db.inTx(ctx, "put products", func(tx *sql.Tx) error {
		type current struct {
			ver  domain.Vector
			live bool
		}
		rows, err := tx.QueryContext(ctx, putProductsLockSQL, idsParam(ids))
		if err != nil {
			return classify(err, "put products", true)
		}
		cur := make(map[int64]current, len(ids))
		for rows.Next() {
			var (
				id int64
				c  current
			)
			if err := rows.Scan(&id, &c.ver.P, &c.ver.F, &c.live); err != nil {
				rows.Close()
				return classify(err, "put products", true)
			}
			cur[id] = c
		}
		if err := rows.Close(); err != nil {
			return classify(err, "put products", true)
		}
		if err := rows.Err(); err != nil {
			return classify(err, "put products", true)
		}
		var upd, ins []productRow
		var own int64 // the highest inserted id of this database's parity
		for _, i := range order {
			put := puts[i]
			c, exists := cur[put.Product.ID]
			switch {
			case put.Expect == nil && exists, put.Expect != nil && (!exists || c.ver != *put.Expect):
				out[i] = store.PutChanged
			case exists:
				out[i] = store.PutUpdated
				if c.live && put.Product.Deleted() {
					out[i] = store.PutDeleted
				}
				upd = append(upd, rowOf(put.Product))
			default:
				out[i] = store.PutCreated
				ins = append(ins, rowOf(put.Product))
				if put.Product.ID%2 == idStart(db.role)%2 {
					own = max(own, put.Product.ID)
				}
			}
		}
		if len(upd) > 0 {
			if _, err := tx.ExecContext(ctx, putProductsUpdateSQL, jsonParam(upd)); err != nil {
				return classify(err, "put products", true)
			}
		}
		if len(ins) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, putProductsInsertSQL, jsonParam(ins)); err != nil {
			return classify(err, "put products", true)
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
