package syncer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

// Retention (the Retention timer function) keeps storage bounded: runs and
// real-time days older than RunRetention are deleted from Table Storage,
// and, if TombstoneRetention is set, tombstones both databases hold
// identically and have held longer than that are purged from both. A pass
// stops starting new work after RetentionBudget and leaves the rest to the
// next; every step is idempotent, so a pass that dies anywhere leaves a
// state the next one finishes.
const (
	// DefaultRunRetention is how long runs and real-time outcomes are kept.
	DefaultRunRetention = 30 * 24 * time.Hour
	// DefaultRetentionBudget keeps one pass inside host.json's
	// functionTimeout (10 minutes).
	DefaultRetentionBudget = 8 * time.Minute
	// queueTTL is the item and planner messages' time to live (the queue's
	// default, 7 days: internal/queue sets none). A run that is not final
	// but has had no activity for longer can have no message left: it is
	// abandoned, and retention may delete it.
	queueTTL = 7 * 24 * time.Hour
	// expiringPage is how many expired runs one listing reads.
	expiringPage = 100
	// purgePage is how many tombstones one purge statement names.
	purgePage = 500
)

// RetentionReport is what one pass did.
type RetentionReport struct {
	Runs             int   // runs deleted
	RunEntities      int64 // their entities, run entities included
	InProgress       int   // expired runs left alone: not final and recently active
	RealtimeEntities int64
	Tombstones       int  // rows purged, both databases counted
	Done             bool // false if the budget ran out with work left
}

// Retain runs one retention pass (the Retention timer).
func (e *Engine) Retain(ctx context.Context) error {
	rep, err := e.RetentionPass(ctx)
	e.o.Logger.Info("retention pass", "runs", rep.Runs, "runEntities", rep.RunEntities, "inProgress", rep.InProgress,
		"realtimeEntities", rep.RealtimeEntities, "tombstones", rep.Tombstones, "done", rep.Done, "err", err)
	return err
}

// RetentionPass deletes what is past retention, within the budget.
func (e *Engine) RetentionPass(ctx context.Context) (RetentionReport, error) {
	var rep RetentionReport
	now := e.o.Clock()
	stop := now.Add(e.o.RetentionBudget)
	over := func() bool { return e.o.Clock().After(stop) || ctx.Err() != nil }
	horizon := now.Add(-e.o.RunRetention)

	if err := e.expireRuns(ctx, horizon, now, over, &rep); err != nil {
		return rep, err
	}
	if over() {
		return rep, nil
	}
	n, err := e.rec.DeleteRealtimeBefore(ctx, horizon)
	rep.RealtimeEntities = n
	if err != nil {
		return rep, err
	}
	if e.o.TombstoneRetention > 0 {
		before := now.Add(-e.o.TombstoneRetention)
		for _, ent := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
			for _, side := range [][2]store.DB{{e.primary, e.fallback}, {e.fallback, e.primary}} {
				if over() {
					return rep, nil
				}
				if err := e.purgeTombstones(ctx, ent, side[0], side[1], before, over, &rep); err != nil {
					return rep, err
				}
			}
		}
	}
	rep.Done = !over()
	return rep, nil
}

// expireRuns deletes the runs created before horizon that are final, being
// deleted already (a pass that stopped), or abandoned: not final, with no
// activity on the run or its shards and pages since horizon and for longer
// than a message lives. A run still in progress is left alone, whatever
// its age.
func (e *Engine) expireRuns(ctx context.Context, horizon, now time.Time, over func() bool, rep *RetentionReport) error {
	idleBefore := now.Add(-max(e.o.RunRetention, queueTTL+24*time.Hour))
	after := ""
	for !over() {
		runs, err := e.rec.ExpiringRuns(ctx, horizon, after, expiringPage)
		if err != nil {
			return err
		}
		for _, r := range runs {
			if over() {
				return nil
			}
			after = r.ID
			etag, ok, err := e.expirable(ctx, r, idleBefore)
			if err != nil {
				return err
			}
			if !ok {
				rep.InProgress++
				continue
			}
			if !r.Deleting {
				err := e.rec.MarkRunDeleting(ctx, r.ID, etag, now)
				if domain.IsKind(err, domain.KindConflict) || domain.IsKind(err, domain.KindNotFound) {
					continue // changed or gone since listed: decided again next pass
				}
				if err != nil {
					return err
				}
			}
			n, err := e.rec.DeleteRun(ctx, r.ID, r.Partitions)
			rep.RunEntities += n
			if err != nil {
				return fmt.Errorf("delete expired run %s: %w", r.ID, err)
			}
			rep.Runs++
		}
		if len(runs) < expiringPage {
			return nil
		}
	}
	return nil
}

// expirable decides whether expired run r may be deleted now, and with
// which ETag it is marked: the listed one when the decision rests on the
// run entity as listed (a change since makes the mark fail), any when the
// run's own counters say it is over.
func (e *Engine) expirable(ctx context.Context, r table.ExpiringRun, idleBefore time.Time) (azcore.ETag, bool, error) {
	if r.Deleting || r.Status == RunCompleted || r.Status == RunFailed {
		return r.ETag, true, nil
	}
	// Pending or Running as recorded, which may be stale: the status is
	// only brought up to date when someone reads it.
	prog, err := e.rec.Progress(ctx, r.ID)
	switch {
	case errors.Is(err, table.ErrNoCounters):
		return r.ETag, true, nil // damaged: it can never complete
	case domain.IsKind(err, domain.KindNotFound):
		return "", false, nil
	case err != nil:
		return "", false, err
	}
	if total, planned := planTotal(r.Run, prog); planned && prog.Done >= total {
		return azcore.ETagAny, true, nil // complete, only never read since
	}
	if last := maxTime(r.LastUpdatedTime, prog.LastUpdated); last.Before(idleBefore) {
		e.o.Logger.Warn("deleting an abandoned run", "run", r.ID, "status", r.Status, "lastActivity", last)
		return r.ETag, true, nil
	}
	e.o.Logger.Info("expired run still in progress: kept", "run", r.ID, "status", r.Status)
	return "", false, nil
}

// purgeTombstones purges side's tombstones deleted before `before` (and
// without outbox entry) that other holds identically (same vector and row),
// or that other no longer holds at all (an earlier purge stopped between
// the two sides). other goes first: a purge that stops in between leaves
// the row on side only, which the next pass finishes. Each side's delete
// re-checks vector, tombstone, horizon and outbox under the rows' locks,
// so a sync or API write in between is never lost: that row stays.
func (e *Engine) purgeTombstones(ctx context.Context, ent domain.Entity, side, other store.DB, before time.Time, over func() bool, rep *RetentionReport) error {
	k := kindOf(ent)
	// The highest id of each parity stays, tombstone or not: it is what
	// keeps a rebuilt database from handing out ids again (internal/ids
	// moves sequences past the highest id either database holds).
	var tops [2]int64
	for parity := range int64(2) {
		for _, db := range []store.DB{side, other} {
			top, err := db.MaxID(ctx, ent, parity)
			if err != nil {
				return err
			}
			tops[parity] = max(tops[parity], top)
		}
	}
	for after := int64(0); !over(); {
		cands, err := side.PurgeCandidates(ctx, ent, after, before, purgePage)
		if err != nil || len(cands) == 0 {
			return err
		}
		after = cands[len(cands)-1].ID
		cands = slices.DeleteFunc(cands, func(c store.Tombstone) bool { return c.ID == tops[c.ID%2] })
		ids := make([]int64, len(cands))
		for i, c := range cands {
			ids[i] = c.ID
		}
		mine, err := k.loadAll(ctx, side, ids)
		if err != nil {
			return err
		}
		theirs, err := k.loadAll(ctx, other, ids)
		if err != nil {
			return err
		}
		var both, alone []store.Tombstone
		for _, c := range cands {
			m, ok := mine[c.ID]
			if !ok || m.ver != c.Ver || !m.deleted {
				continue // changed since listed
			}
			switch t, ok := theirs[c.ID]; {
			case !ok:
				alone = append(alone, c)
			case t.deleted && t.ver == m.ver && k.same(m.row, t.row):
				both = append(both, c)
			}
		}
		gone, err := other.PurgeTombstones(ctx, ent, both, before)
		if err != nil {
			return err
		}
		rep.Tombstones += len(gone)
		for _, c := range both {
			if _, ok := slices.BinarySearch(gone, c.ID); ok {
				alone = append(alone, c)
			}
		}
		gone, err = side.PurgeTombstones(ctx, ent, alone, before)
		if err != nil {
			return err
		}
		rep.Tombstones += len(gone)
		if len(cands) < purgePage {
			return nil
		}
	}
	return nil
}

// loaded is one row as purge compares it.
type loaded struct {
	ver     domain.Vector
	deleted bool
	row     any
}

// purgeKind loads and compares the rows of one entity type for purge.
type purgeKind struct {
	loadAll func(ctx context.Context, db store.DB, ids []int64) (map[int64]loaded, error)
	same    func(a, b any) bool
}

func kindOf(ent domain.Entity) purgeKind {
	if ent == domain.EntityUser {
		return purgeKind{
			loadAll: func(ctx context.Context, db store.DB, ids []int64) (map[int64]loaded, error) {
				out := make(map[int64]loaded, len(ids))
				for _, id := range ids {
					u, ok, err := db.LoadUser(ctx, id)
					if err != nil {
						return nil, err
					}
					if ok {
						out[id] = loaded{ver: u.Ver, deleted: u.Deleted(), row: u}
					}
				}
				return out, nil
			},
			same: func(a, b any) bool { return userKind.same(a.(domain.User), b.(domain.User)) },
		}
	}
	return purgeKind{
		loadAll: func(ctx context.Context, db store.DB, ids []int64) (map[int64]loaded, error) {
			ps, err := db.LoadProducts(ctx, ids)
			if err != nil {
				return nil, err
			}
			out := make(map[int64]loaded, len(ps))
			for id, p := range ps {
				out[id] = loaded{ver: p.Ver, deleted: p.Deleted(), row: p}
			}
			return out, nil
		},
		same: func(a, b any) bool { return productKind.same(a.(domain.Product), b.(domain.Product)) },
	}
}
