package syncer

import (
	"context"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Outcome statuses recorded for one item.
const (
	StatusCreated   = "created"
	StatusUpdated   = "updated"
	StatusDeleted   = "deleted"
	StatusUnchanged = "unchanged"
	StatusConflict  = "conflict" // users only: the email belongs to another user on the other side
	StatusFailed    = "failed"   // retries exhausted
)

// Statuses lists every outcome, in the order status reports show them.
var Statuses = []string{StatusCreated, StatusUpdated, StatusDeleted, StatusUnchanged, StatusConflict, StatusFailed}

// kind adapts one entity type to the generic merge.
type kind[T any] struct {
	load    func(context.Context, store.DB, int64) (T, bool, error)
	put     func(context.Context, store.DB, T, bool) (store.PutResult, error)
	version func(T) time.Time
	deleted func(T) bool
	same    func(a, b T) bool
}

var productKind = kind[domain.Product]{
	load: func(ctx context.Context, db store.DB, id int64) (domain.Product, bool, error) {
		return db.LoadProduct(ctx, id)
	},
	put: func(ctx context.Context, db store.DB, p domain.Product, tie bool) (store.PutResult, error) {
		return db.PutProduct(ctx, p, tie)
	},
	version: func(p domain.Product) time.Time { return p.UpdatedAt },
	deleted: domain.Product.Deleted,
	same: func(a, b domain.Product) bool {
		return a.Name == b.Name && a.Description == b.Description && a.Price == b.Price &&
			a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && sameTime(a.DeletedAt, b.DeletedAt)
	},
}

var userKind = kind[domain.User]{
	load: func(ctx context.Context, db store.DB, id int64) (domain.User, bool, error) {
		return db.LoadUser(ctx, id)
	},
	put: func(ctx context.Context, db store.DB, u domain.User, tie bool) (store.PutResult, error) {
		return db.PutUser(ctx, u, tie)
	},
	version: func(u domain.User) time.Time { return u.UpdatedAt },
	deleted: domain.User.Deleted,
	same: func(a, b domain.User) bool {
		return a.Name == b.Name && a.Email == b.Email &&
			a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && sameTime(a.DeletedAt, b.DeletedAt)
	},
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// plan is what merging one item must do: copy the row of side `from` to the
// other side (overwriting an equally new row if tie), or nothing.
type plan struct {
	copy bool
	from store.Role
	tie  bool
}

// decide applies last-writer-wins: the newer updatedAt wins; on a tie a
// tombstone beats a live row (a delete is never undone by a concurrent
// edit), then the primary's row wins. Identical rows need nothing.
func decide[T any](k kind[T], p T, pok bool, f T, fok bool) plan {
	switch {
	case !pok && !fok:
		return plan{}
	case !fok:
		return plan{copy: true, from: store.RolePrimary}
	case !pok:
		return plan{copy: true, from: store.RoleFallback}
	case k.same(p, f):
		return plan{}
	}
	pv, fv := k.version(p), k.version(f)
	switch {
	case pv.After(fv):
		return plan{copy: true, from: store.RolePrimary}
	case fv.After(pv):
		return plan{copy: true, from: store.RoleFallback}
	case k.deleted(f) && !k.deleted(p):
		return plan{copy: true, from: store.RoleFallback, tie: true}
	default:
		return plan{copy: true, from: store.RolePrimary, tie: true}
	}
}

// merged is the result of merging one item.
type merged struct {
	status  string
	reason  string
	version time.Time // the newest version either side held; zero if neither had the row
}

// merge makes both databases hold the winning row of one item and
// acknowledges the outbox entries that are now satisfied on both sides.
// An error means a transient failure: the caller retries the whole merge,
// which is safe because every step is idempotent.
func merge[T any](ctx context.Context, k kind[T], primary, fallback store.DB, id int64, e domain.Entity) (merged, error) {
	p, pok, err := k.load(ctx, primary, id)
	if err != nil {
		return merged{}, err
	}
	f, fok, err := k.load(ctx, fallback, id)
	if err != nil {
		return merged{}, err
	}
	var m merged
	switch {
	case pok && fok:
		m.version = maxTime(k.version(p), k.version(f))
	case pok:
		m.version = k.version(p)
	case fok:
		m.version = k.version(f)
	default:
		return merged{status: StatusUnchanged, reason: "in neither database"}, nil
	}

	pl := decide(k, p, pok, f, fok)
	m.status = StatusUnchanged
	if pl.copy {
		row, target := p, fallback
		if pl.from == store.RoleFallback {
			row, target = f, primary
		}
		res, err := k.put(ctx, target, row, pl.tie)
		switch {
		case domain.IsKind(err, domain.KindConflict):
			// Both rows stay as they are; the outcome says why. The outbox
			// entry is still acknowledged below: a conflict needs a person,
			// and must not hold failback hostage (see README, sync guarantees).
			m.status, m.reason = StatusConflict, reasonOf(err)
		case err != nil:
			return merged{}, err
		default:
			m.status = string(res)
			if res == store.PutCreated && k.deleted(row) {
				m.status = StatusDeleted // a tombstone arriving where the row never existed
			}
		}
	}

	// Entries up to the winning version are satisfied on both sides. A
	// newer write that raced with this merge has a newer version and stays.
	for _, db := range []store.DB{primary, fallback} {
		if err := db.AckOutbox(ctx, e, id, m.version); err != nil {
			return merged{}, err
		}
	}
	return m, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
