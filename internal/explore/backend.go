package explore

import (
	"context"
	"slices"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/memdb"
	"dualsync/internal/store"
	"dualsync/internal/syncer"
	"dualsync/internal/table"
)

// backend is what a history runs on: the two databases and the recorder.
// The generator, the steps and the checks are the same whatever the
// backend; memBackend (memdb and the in-memory Recorder) is the explorer's
// own, a real one (PostgreSQL and table.Store on Azurite) is in the tests.
type backend interface {
	// open starts a process on database r: its handle, with its clock (its
	// floor) and under the database's faults f.
	open(r store.Role, clock domain.Clock, f *fault) store.DB
	// backup takes a backup of database r; restore puts it back.
	backup(r store.Role) any
	restore(r store.Role, b any)
	// rebuild empties database r as a new, migrated one.
	rebuild(r store.Role)
	// recorder returns the recorder, under the faults f (Fault hook) and,
	// where it keeps its own times, on the storage clock.
	recorder(f *fault, clock func() time.Time) recorder
	// close releases what the backend holds.
	close()
}

// recorder is a syncer.Recorder the explorer can also read for its
// checks, faults bypassed.
type recorder interface {
	syncer.Recorder
	// runIDs lists every run recorded, oldest first.
	runIDs() []string
	// hasResult reports whether a run's item has its outcome recorded.
	hasResult(run string, k itemKey) bool
	// intent is the recorded intent of an item.
	intent(partition string, e domain.Entity, id int64) (table.Result, bool)
	// detail is a run's recorded outcomes, the items it was to record (the
	// ids its plan pages list, or its compared ranges found differing) and
	// how many its ranges counted unchanged in bulk.
	detail(run string) runDetail
}

type runDetail struct {
	results  map[itemKey]table.Result
	want     []int64
	compared int64
}

// memBackend runs a history in memory: memdb databases and a Recorder.
type memBackend struct {
	data map[store.Role]*memdb.Data
}

func newMemBackend() *memBackend {
	return &memBackend{data: map[store.Role]*memdb.Data{
		store.RolePrimary: memdb.New(store.RolePrimary), store.RoleFallback: memdb.New(store.RoleFallback)}}
}

func (b *memBackend) open(r store.Role, clock domain.Clock, f *fault) store.DB {
	b.data[r].SetFaults(f.before, f.afterOp)
	return b.data[r].Open(clock)
}

func (b *memBackend) backup(r store.Role) any { return b.data[r].Snapshot() }

func (b *memBackend) restore(r store.Role, snap any) { b.data[r].Restore(snap.(*memdb.Snapshot)) }

func (b *memBackend) rebuild(r store.Role) {
	fresh := memdb.New(r)
	if err := fresh.Open(nil).Migrate(context.Background()); err != nil {
		panic(err)
	}
	b.data[r].Restore(fresh.Snapshot())
}

func (b *memBackend) recorder(f *fault, clock func() time.Time) recorder {
	rec := NewRecorder()
	rec.Clock = clock
	rec.Fault = f.recorder
	return rec
}

func (b *memBackend) close() {}

// detail reads a run's recorded outcomes and planned items.
func (r *Recorder) detail(id string) runDetail {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := runDetail{results: map[itemKey]table.Result{}}
	rr, ok := r.runs[id]
	if !ok {
		return d
	}
	for k, res := range rr.results {
		d.results[k] = res
	}
	if byRange(rr.run) {
		for _, after := range slices.Sorted(mapKeys(rr.ranges)) {
			d.want = append(d.want, rr.ranges[after].Differ...)
		}
	} else {
		for _, after := range slices.Sorted(mapKeys(rr.pages)) {
			d.want = append(d.want, rr.pages[after].IDs...)
		}
	}
	d.compared = rr.compared
	return d
}

// byRange reports whether a run compares ranges (diff, verify) rather than
// planning every item (full).
func byRange(run table.Run) bool { return run.Mode == syncer.ModeDiff || run.Mode == syncer.ModeVerify }

func mapKeys[V any](m map[int64]V) func(func(int64) bool) {
	return func(yield func(int64) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
