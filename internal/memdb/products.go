package memdb

import (
	"context"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

func (db *DB) ListProducts(ctx context.Context, p store.Page) ([]domain.Product, error) {
	out := []domain.Product{}
	err := db.do(ctx, "ListProducts", func(s *state) error {
		for _, id := range s.products.after(p.After) {
			if r := s.products.rows[id]; !r.Deleted() {
				out = append(out, copyProduct(r))
				if len(out) == limitOf(p.Limit) {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (db *DB) GetProduct(ctx context.Context, id int64) (domain.Product, error) {
	var p domain.Product
	err := db.do(ctx, "GetProduct", func(s *state) error {
		r, ok := s.products.get(id)
		if !ok || r.Deleted() {
			return notFound(domain.EntityProduct, id)
		}
		p = copyProduct(r)
		return nil
	})
	return p, err
}

func (db *DB) LoadProduct(ctx context.Context, id int64) (domain.Product, bool, error) {
	var (
		p  domain.Product
		ok bool
	)
	err := db.do(ctx, "LoadProduct", func(s *state) error {
		p, ok = s.products.get(id)
		p = copyProduct(p)
		return nil
	})
	return p, ok && err == nil, err
}

func (db *DB) LoadProducts(ctx context.Context, ids []int64) (map[int64]domain.Product, error) {
	out := make(map[int64]domain.Product, len(ids))
	if len(ids) == 0 {
		return out, nil // the adapter sends no query
	}
	err := db.do(ctx, "LoadProducts", func(s *state) error {
		for _, id := range ids {
			if p, ok := s.products.get(id); ok {
				out[id] = copyProduct(p)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// CreateProduct returns the product as the adapter does: as computed, not
// as stored (a column may cut trailing spaces; see fitText).
func (db *DB) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	now := db.clock()
	p := c.ApplyAt(domain.Product{}, now)
	p.CreatedAt, p.UpdatedAt = now, now
	p.Ver, _ = p.Ver.Next(db.primary(), db.floor, p.Jump)
	err := db.do(ctx, "CreateProduct", func(s *state) error {
		p.ID = s.nextval(domain.EntityProduct) // spent even if the insert fails
		q, err := fitProduct(p)
		if err != nil {
			return err
		}
		if _, ok := s.products.get(q.ID); ok {
			return domain.Errorf(domain.KindConflict, "the row conflicts with an existing one")
		}
		s.products.set(q.ID, q)
		s.insertOutbox(domain.EntityProduct, q.ID, store.Own(db.role, q.Ver), now)
		return nil
	})
	if err != nil {
		return domain.Product{}, err
	}
	return p, nil
}

// UpdateProduct changes the live row: this side's vector entry counts the
// write, and only the fields whose value changes get the write's time.
func (db *DB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error) {
	var p domain.Product
	err := db.do(ctx, "UpdateProduct", func(s *state) error {
		prev, ok := s.products.get(id)
		if !ok || prev.Deleted() {
			return notFound(domain.EntityProduct, id)
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		p = c.ApplyAt(prev, v)
		p.UpdatedAt = v
		p.Ver, p.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		q, err := fitProduct(p)
		if err != nil {
			return err
		}
		s.products.set(id, q)
		s.insertOutbox(domain.EntityProduct, id, store.Own(db.role, q.Ver), db.clock())
		return nil
	})
	if err != nil {
		return domain.Product{}, err
	}
	return copyProduct(p), nil
}

// DeleteProduct turns the live row into a tombstone, counted in the vector
// like any write.
func (db *DB) DeleteProduct(ctx context.Context, id int64) error {
	return db.do(ctx, "DeleteProduct", func(s *state) error {
		prev, ok := s.products.get(id)
		if !ok || prev.Deleted() {
			return notFound(domain.EntityProduct, id)
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		p := prev
		p.DeletedAt, p.UpdatedAt = &v, v
		p.Ver, p.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		s.products.set(id, p)
		s.insertOutbox(domain.EntityProduct, id, store.Own(db.role, p.Ver), db.clock())
		return nil
	})
}

// lockForPut checks that the target row of a sync write still holds expect
// (nil: still absent), as the adapter's lockForPut does under the row lock.
func lockForPut(cur domain.Vector, exists bool, tbl string, id int64, expect *domain.Vector) error {
	if exists != (expect != nil) || (exists && *expect != cur) {
		return changed(tbl, id)
	}
	return nil
}

func truncProduct(p domain.Product) domain.Product {
	p.CreatedAt, p.UpdatedAt, p.DeletedAt = domain.Millis(p.CreatedAt), domain.Millis(p.UpdatedAt), millisPtr(p.DeletedAt)
	p.NameAt, p.DescriptionAt, p.PriceAt = domain.Millis(p.NameAt), domain.Millis(p.DescriptionAt), domain.Millis(p.PriceAt)
	return p
}

// putProduct writes p over the row cur (exists: an update) as a sync write:
// every column but the jump, which is local and stays (an insert has none).
func (s *state) putProduct(p domain.Product, cur domain.Product, exists bool) {
	p.Jump = domain.Jump{}
	if exists {
		p.Jump = cur.Jump
	}
	s.products.set(p.ID, p)
}

func (db *DB) PutProduct(ctx context.Context, p domain.Product, expect *domain.Vector) (store.PutResult, error) {
	p = truncProduct(p)
	var res store.PutResult
	err := db.do(ctx, "PutProduct", func(s *state) error {
		cur, exists := s.products.get(p.ID)
		if err := lockForPut(cur.Ver, exists, "products", p.ID, expect); err != nil {
			return err
		}
		q, err := fitProduct(p)
		if err != nil {
			return err
		}
		res = putResult(exists, exists && !cur.Deleted(), p.Deleted())
		s.putProduct(q, cur, exists)
		if !exists {
			s.advance(db.role, domain.EntityProduct, p.ID)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return res, nil
}

// PutProducts is PutProduct per put, in one transaction: a put whose row
// changed is PutChanged and not written; any rejected value writes nothing.
func (db *DB) PutProducts(ctx context.Context, puts []store.ProductPut) ([]store.PutResult, error) {
	out := make([]store.PutResult, len(puts))
	if len(puts) == 0 {
		return out, nil
	}
	if err := store.CheckProductPuts(puts); err != nil {
		return nil, err
	}
	err := db.do(ctx, "PutProducts", func(s *state) error {
		type write struct {
			p, cur domain.Product
			exists bool
		}
		var writes []write
		for _, i := range store.ProductLockOrder(puts) {
			put := puts[i]
			cur, exists := s.products.get(put.Product.ID)
			if lockForPut(cur.Ver, exists, "products", put.Product.ID, put.Expect) != nil {
				out[i] = store.PutChanged
				continue
			}
			q, err := fitProduct(truncProduct(put.Product))
			if err != nil {
				return err
			}
			out[i] = putResult(exists, exists && !cur.Deleted(), put.Product.Deleted())
			writes = append(writes, write{q, cur, exists})
		}
		var own int64 // the highest inserted id of this database's parity
		for _, w := range writes {
			s.putProduct(w.p, w.cur, w.exists)
			if !w.exists && w.p.ID%2 == idStart(db.role)%2 {
				own = max(own, w.p.ID)
			}
		}
		if own != 0 {
			s.advance(db.role, domain.EntityProduct, own)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
