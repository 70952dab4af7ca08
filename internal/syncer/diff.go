package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

// Run modes. A full run sends one queue message per item, as runs always
// did. A diff run (the nightly default) plans ranges of ids instead: each
// range's message reads both databases' rows of the range, counts the
// identical ones unchanged in bulk and sends one ordinary item message per
// item that differs, which is synced and recorded as in a full run. A
// verify run compares the same way and changes nothing: it records each
// differing item as "differs" with both rows.
const (
	ModeFull   = "full"
	ModeDiff   = "diff"
	ModeVerify = "verify"
)

// StatusDiffers is the outcome a verify run records for an item that is not
// the same in both databases.
const StatusDiffers = table.StatusDiffers

// Modes lists the run modes.
var Modes = []string{ModeFull, ModeDiff, ModeVerify}

// ValidMode reports whether m names a run mode.
func ValidMode(m string) bool { return slices.Contains(Modes, m) }

// modeOf is a run's mode; runs from before modes were full.
func modeOf(r table.Run) string {
	if r.Mode == "" {
		return ModeFull
	}
	return r.Mode
}

// byRange reports whether a run compares ranges (diff and verify).
func byRange(r table.Run) bool { return r.Mode == ModeDiff || r.Mode == ModeVerify }

// Range sizing defaults (Options): a range of at most 4,000 ids read from
// each side keeps one comparison to two index range scans and about 1-2 MB
// (RangeWorkers of them at once per instance); 25 ranges per planner page
// list 100,000 ids of each side per page. 1,000,000 products take 250
// range messages (BENCHMARKS.md measures 2,000 against 4,000).
const (
	defaultRangeSize     = 4000
	defaultRangesPerPage = 25
	defaultRangeWorkers  = 4
)

// CrashAfterRangeRecorded names the point between recording a compared
// range and handing its differing items on, where Options.CrashPoint is
// called: tests kill the process there to prove that a redelivered range
// counts nothing twice.
const CrashAfterRangeRecorded = "range-recorded"

// planIDs is what one planner page records: item ids for a full run; for
// a range run, the upper bounds of its ranges, each range holding at most
// RangeSize ids of the union of both databases.
func (e *Engine) planIDs(ctx context.Context, run table.Run) func(after int64) ([]int64, bool, store.Role, error) {
	return func(after int64) ([]int64, bool, store.Role, error) {
		if !byRange(run) {
			return e.union(ctx, run.Entity, after, e.o.PageSize)
		}
		ids, last, missing, err := e.union(ctx, run.Entity, after, e.o.RangeSize*e.o.RangesPerPage)
		if err != nil {
			return nil, false, "", err
		}
		return boundaries(ids, e.o.RangeSize), last, missing, nil
	}
}

// boundaries cuts ascending ids into ranges of at most size ids and returns
// each range's last id: the ranges are (after, b0], (b0, b1], ...
func boundaries(ids []int64, size int) []int64 {
	var out []int64
	for i := size - 1; i < len(ids)+size-1; i += size {
		out = append(out, ids[min(i, len(ids)-1)])
	}
	return out
}

// sendPage enqueues a recorded page's messages: one per item, or one per
// range (on the planner queue, as PlanMessage with UpTo).
func (e *Engine) sendPage(ctx context.Context, run table.Run, page table.PlanPage) error {
	if !byRange(run) {
		return e.sendItems(ctx, run, page.IDs)
	}
	msgs := make([]PlanMessage, len(page.IDs))
	for i, upTo := range page.IDs {
		after := page.After
		if i > 0 {
			after = page.IDs[i-1]
		}
		msgs[i] = PlanMessage{Run: run.ID, Entity: run.Entity, After: after, UpTo: upTo}
	}
	return parallel(ctx, e.o.SendWorkers, msgs, func(ctx context.Context, m PlanMessage) error {
		return e.plans.Send(ctx, m)
	})
}

// planTotal is how many items the run has and whether that is final: the
// planned items of a full run; the items its compared ranges found, once
// every planned range is compared, for a range run.
func planTotal(run table.Run, prog table.Progress) (total int64, planned bool) {
	n, chained := chain(prog.Pages)
	if !byRange(run) {
		return n, chained
	}
	return prog.Items, chained && prog.Ranges >= n
}

// compareRange handles one range message: it compares the range, records
// it with its counts (once, whatever the deliveries), then hands each
// differing item on: an item message (diff) or a "differs" result
// (verify). A redelivery goes on from what was recorded.
func (e *Engine) compareRange(ctx context.Context, pm PlanMessage, d Delivery) error {
	run, err := e.rec.GetRun(ctx, pm.Run)
	if domain.IsKind(err, domain.KindNotFound) {
		e.o.Logger.Warn("dropping range message of an unknown run", "run", pm.Run)
		return nil
	}
	if err != nil {
		return err
	}
	if run.Status == RunCompleted || run.Status == RunFailed {
		return nil
	}
	if !byRange(run) || pm.UpTo <= pm.After || pm.After < 0 {
		e.o.Logger.Warn("dropping an invalid range message", "run", run.ID, "mode", modeOf(run), "after", pm.After, "upTo", pm.UpTo)
		return nil
	}
	rr, ok, err := e.rec.GetRange(ctx, run.ID, pm.After)
	if err != nil {
		return err
	}
	var rows map[int64]differ // this delivery's reading, for a verify report
	if !ok {
		var c comparison
		if c, err = e.compare(ctx, run.Entity, pm.After, pm.UpTo); err != nil {
			return fmt.Errorf("compare %ss (%d, %d]: %w", run.Entity, pm.After, pm.UpTo, err)
		}
		rr = table.RangeRecord{After: pm.After, UpTo: pm.UpTo, Items: c.equal + len(c.differ), Equal: c.equal, Differ: c.ids()}
		recorded, err := e.rec.RecordRange(ctx, run.ID, rr)
		if err != nil {
			return err
		}
		if recorded {
			rows = c.differ
		} else if rr, ok, err = e.rec.GetRange(ctx, run.ID, pm.After); err != nil || !ok {
			// Another delivery recorded it first: its ids stand.
			return fmt.Errorf("range (%d, %d] of run %s: recorded, then not found: %w", pm.After, pm.UpTo, run.ID, err)
		}
		if e.o.CrashPoint != nil {
			e.o.CrashPoint(CrashAfterRangeRecorded, d)
		}
	}
	if rr.Done {
		return nil
	}
	if run.Mode == ModeVerify {
		err = e.reportDiffers(ctx, run, rr.Differ, rows)
	} else {
		err = parallel(ctx, e.o.SendWorkers, rr.Differ, func(ctx context.Context, id int64) error {
			return e.items.Send(ctx, Message{Entity: run.Entity, ID: id, Run: run.ID})
		})
	}
	if err != nil {
		return err
	}
	if run.Status == RunPending {
		run.Status, run.LastUpdatedTime = RunRunning, e.now()
		if err := e.rec.UpdateRun(ctx, run); err != nil {
			e.o.Logger.Warn("could not mark the run running", "run", run.ID, "err", err)
		}
	}
	return e.rec.MarkRangeDone(ctx, run.ID, pm.After)
}

// differ is one item that is not the same in both databases: its rows in
// the detail's JSON form (nil where absent) and what differs.
type differ struct {
	primary, fallback any
	differences       []string
	fields            []string
	version           time.Time
}

type comparison struct {
	equal  int
	differ map[int64]differ
}

func (c comparison) ids() []int64 {
	ids := make([]int64, 0, len(c.differ))
	for id := range c.differ {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// compare reads the range from both databases (at most RangeWorkers
// comparisons at once per instance, which bounds memory) and compares the
// rows as the merge does.
func (e *Engine) compare(ctx context.Context, ent domain.Entity, after, upTo int64) (comparison, error) {
	select {
	case e.rangeSlots <- struct{}{}:
		defer func() { <-e.rangeSlots }()
	case <-ctx.Done():
		return comparison{}, ctx.Err()
	}
	if ent == domain.EntityUser {
		return compareIn(ctx, userRanger, e.primary, e.fallback, after, upTo)
	}
	return compareIn(ctx, productRanger, e.primary, e.fallback, after, upTo)
}

// ranger adapts an entity to range comparison: the merge's kind (whose
// vector and differ decide equality, so "equal" here is exactly what the
// merge calls equal, and a report names the same columns) and how to read
// a range.
type ranger[T any] struct {
	k    kind[T]
	read func(ctx context.Context, db store.DB, after, upTo int64) ([]T, error)
	id   func(T) int64
}

var productRanger = ranger[domain.Product]{
	k: productKind,
	read: func(ctx context.Context, db store.DB, a, b int64) ([]domain.Product, error) {
		return db.ProductsInRange(ctx, a, b)
	},
	id: func(p domain.Product) int64 { return p.ID },
}

var userRanger = ranger[domain.User]{
	k: userKind,
	read: func(ctx context.Context, db store.DB, a, b int64) ([]domain.User, error) {
		return db.UsersInRange(ctx, a, b)
	},
	id: func(u domain.User) int64 { return u.ID },
}

func compareIn[T any](ctx context.Context, r ranger[T], primary, fallback store.DB, after, upTo int64) (comparison, error) {
	ps, err := r.read(ctx, primary, after, upTo)
	if err != nil {
		return comparison{}, err
	}
	fs, err := r.read(ctx, fallback, after, upTo)
	if err != nil {
		return comparison{}, err
	}
	c := comparison{differ: map[int64]differ{}}
	// Both lists ascend by id: walk them together.
	for i, j := 0, 0; i < len(ps) || j < len(fs); {
		switch {
		case j == len(fs) || (i < len(ps) && r.id(ps[i]) < r.id(fs[j])):
			c.differ[r.id(ps[i])] = diffRows(r, &ps[i], nil)
			i++
		case i == len(ps) || r.id(fs[j]) < r.id(ps[i]):
			c.differ[r.id(fs[j])] = diffRows(r, nil, &fs[j])
			j++
		default:
			if p, f := ps[i], fs[j]; r.k.ver(p) == r.k.ver(f) && r.k.same(p, f) {
				c.equal++
			} else {
				c.differ[r.id(p)] = diffRows(r, &p, &f)
			}
			i++
			j++
		}
	}
	return c, nil
}

// diffRows says what differs between the two rows of one item (nil: absent).
func diffRows[T any](r ranger[T], p, f *T) differ {
	var d differ
	switch {
	case p == nil && f == nil:
		return d
	case p == nil:
		d.differences = []string{"missing_primary"}
	case f == nil:
		d.differences = []string{"missing_fallback"}
	default:
		if r.k.ver(*p) != r.k.ver(*f) {
			d.differences = append(d.differences, "vector")
		}
		if r.k.deleted(*p) != r.k.deleted(*f) {
			d.differences = append(d.differences, "tombstone")
		}
		d.fields = r.k.differ(*p, *f)
		if slices.ContainsFunc(d.fields, func(n string) bool { return n != "deletedAt" }) ||
			(slices.Contains(d.fields, "deletedAt") && r.k.deleted(*p) == r.k.deleted(*f)) {
			d.differences = append(d.differences, "content")
		}
	}
	if p != nil {
		d.primary, d.version = r.k.detail(*p), r.k.version(*p)
	}
	if f != nil {
		d.fallback, d.version = r.k.detail(*f), maxTime(d.version, r.k.version(*f))
	}
	return d
}

// reportDiffers records a verify run's differing items. rows is the
// reading that found them; on a redelivery (nil) each item is read again,
// and one that no longer differs is still reported, with both rows as
// they are now and no differences, so the counts stay exact.
func (e *Engine) reportDiffers(ctx context.Context, run table.Run, ids []int64, rows map[int64]differ) error {
	return parallel(ctx, e.o.SendWorkers, ids, func(ctx context.Context, id int64) error {
		d, ok := rows[id]
		if !ok {
			var err error
			if d, err = e.reread(ctx, run.Entity, id); err != nil {
				return err
			}
		}
		b, err := json.Marshal(map[string]any{
			"primary": d.primary, "fallback": d.fallback,
			"differences": nonNil(d.differences), "fields": nonNil(d.fields),
		})
		if err != nil {
			return err
		}
		reason := strings.Join(d.differences, ", ")
		if reason == "" {
			reason = "differed when compared; the same when read again"
		}
		_, err = e.rec.RecordRunResult(ctx, run.ID, table.Result{
			Entity: run.Entity, ID: id, Status: StatusDiffers, Reason: reason, Detail: string(b), Version: d.version, At: e.now(),
		})
		return err
	})
}

func (e *Engine) reread(ctx context.Context, ent domain.Entity, id int64) (differ, error) {
	if ent == domain.EntityUser {
		return rereadOne(ctx, userRanger, e.primary, e.fallback, id)
	}
	return rereadOne(ctx, productRanger, e.primary, e.fallback, id)
}

func rereadOne[T any](ctx context.Context, r ranger[T], primary, fallback store.DB, id int64) (differ, error) {
	c, err := compareIn(ctx, r, primary, fallback, id-1, id)
	if err != nil {
		return differ{}, err
	}
	if d, ok := c.differ[id]; ok {
		return d, nil
	}
	p, pok, err := r.k.load(ctx, primary, id)
	if err != nil {
		return differ{}, err
	}
	d := differ{}
	if pok {
		d.primary, d.fallback, d.version = r.k.detail(p), r.k.detail(p), r.k.version(p)
	}
	return d, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// rangePoisonReason is why a run failed when one of its range messages
// exhausted its retries.
func rangePoisonReason(run table.Run, pm PlanMessage) string {
	return fmt.Sprintf("comparing the %ss with ids in (%d, %d] failed after the queue's retries (a database or the queue was unavailable); start a new run", run.Entity, pm.After, pm.UpTo)
}
