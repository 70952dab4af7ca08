package syncer

import (
	"context"
	"errors"
	"fmt"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

// mergeProducts merges a batch of products with a few statements for all
// of them: one read per side, one batch of compare-and-set writes per side,
// one acknowledgement per side. Real-time sync mostly copies rows that one
// side changed, and item by item the statements would cost sync more than
// the writes themselves cost the API. It returns the outcomes of the
// products it merged and, in rest, those it leaves to the one-by-one merge:
// rows changed in both databases (merged field by field) and rows written
// again while this ran (their compare-and-set failed). An error means a
// database failed part-way; merging again is safe (an entry acknowledged
// already covers a version both sides hold).
func (e *Engine) mergeProducts(ctx context.Context, ids []int64) (done map[int64]table.Result, rest []int64, err error) {
	ps, err := e.primary.LoadProducts(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("sync products: %w", err)
	}
	fs, err := e.fallback.LoadProducts(ctx, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("sync products: %w", err)
	}
	done = make(map[int64]table.Result, len(ids))
	agreed := make(map[int64]domain.Vector, len(ids))
	var toPrimary, toFallback []store.ProductPut
	known := e.distrust()
	for _, id := range ids {
		p, pok := ps[id]
		f, fok := fs[id]
		d := decide(productKind, p, pok, f, fok, known)
		if d.reg != 0 || d.distrusted != 0 || d.drift {
			rest = append(rest, id) // a database went back in time, or SQL changed a row: merged one by one
			continue
		}
		switch d.act {
		case actNeitherSides:
			done[id] = table.Result{Entity: domain.EntityProduct, ID: id, Status: StatusUnchanged, Reason: reasonNeither}
		case actNone:
			done[id] = table.Result{Entity: domain.EntityProduct, ID: id, Status: StatusUnchanged, Version: p.UpdatedAt, Ver: p.Ver}
			agreed[id] = p.Ver
		case actToFallback:
			toFallback = append(toFallback, store.ProductPut{Product: p, Expect: expected(f.Ver, fok)})
		case actToPrimary:
			toPrimary = append(toPrimary, store.ProductPut{Product: f, Expect: expected(p.Ver, pok)})
		default:
			rest = append(rest, id)
		}
	}
	for _, w := range []struct {
		target store.DB
		source regression
		puts   []store.ProductPut
	}{{e.fallback, regPrimary, toFallback}, {e.primary, regFallback, toPrimary}} {
		if len(w.puts) == 0 {
			continue
		}
		if err := e.vouch(ctx, known, w.source); errors.Is(err, errDistrusted) {
			for _, put := range w.puts {
				rest = append(rest, put.Product.ID) // its source went back in time: merged one by one
			}
			continue
		} else if err != nil {
			return nil, nil, fmt.Errorf("sync products: %w", err)
		}
		res, err := w.target.PutProducts(ctx, w.puts)
		if err != nil {
			return nil, nil, fmt.Errorf("sync products: %w", err)
		}
		for i, put := range w.puts {
			row := put.Product
			if res[i] == store.PutChanged {
				rest = append(rest, row.ID)
				continue
			}
			status := string(res[i])
			if res[i] == store.PutCreated && row.Deleted() {
				status = StatusDeleted // a tombstone arriving where the row never existed
			}
			done[row.ID] = table.Result{Entity: domain.EntityProduct, ID: row.ID, Status: status, Version: row.UpdatedAt, Ver: row.Ver}
			agreed[row.ID] = row.Ver
		}
	}
	var onPrimary, onFallback []store.OutboxMark
	for id, v := range agreed {
		onPrimary = append(onPrimary, store.OutboxMark{ID: id, UpTo: v.P})
		onFallback = append(onFallback, store.OutboxMark{ID: id, UpTo: v.F})
	}
	if err := e.primary.AckOutbox(ctx, domain.EntityProduct, onPrimary); err != nil {
		return nil, nil, fmt.Errorf("sync products: %w", err)
	}
	if err := e.fallback.AckOutbox(ctx, domain.EntityProduct, onFallback); err != nil {
		return nil, nil, fmt.Errorf("sync products: %w", err)
	}
	return done, rest, nil
}

// expected is the vector a compare-and-set write expects: the row's, or
// none when the row is absent.
func expected(v domain.Vector, ok bool) *domain.Vector {
	if !ok {
		return nil
	}
	return &v
}
