package explore

// The real backend: each database a PostgreSQL database (internal/postgres,
// one *postgres.DB per process), backups and restores through testenv's
// Backup, rebuilds through testenv.Rebuild, faults injected by faultDB; the
// recorder the real table.Store on Azurite under tableRecorder's faults.
// The queue stays the explorer's own (the real one adds nothing the
// explorer checks, and is slow).

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/postgres"
	"dualsync/internal/store"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

// realBackend runs a history on two fresh PostgreSQL databases and tables
// of its own on Azurite.
type realBackend struct {
	t      testing.TB
	url    map[store.Role]string
	svc    *aztables.ServiceClient
	prefix string
	store  *table.Store
}

func newRealBackend(t testing.TB, storage string) *realBackend {
	t.Helper()
	b := &realBackend{t: t, url: map[store.Role]string{
		store.RolePrimary: testenv.CreateDatabase(t), store.RoleFallback: testenv.CreateDatabase(t)}}
	svc, err := aztables.NewServiceClientFromConnectionString(storage, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.svc, b.prefix = svc, "x"+testenv.RandomHex(5)
	b.store = table.New(svc, &table.Options{Prefix: b.prefix})
	if err := b.store.Ensure(context.Background()); err != nil {
		t.Fatalf("ensure tables: %v", err)
	}
	return b
}

func (b *realBackend) open(r store.Role, clock domain.Clock, f *fault) store.DB {
	db, err := postgres.Open(context.Background(), b.url[r], r, postgres.Options{Clock: clock, MaxConns: 4})
	if err != nil {
		b.t.Fatalf("open the %s: %v", r, err)
	}
	return faultDB{DB: db, f: f}
}

func (b *realBackend) backup(r store.Role) any { return testenv.TakeBackup(b.t, b.url[r]) }

func (b *realBackend) restore(r store.Role, snap any) { snap.(*testenv.Backup).Restore(b.t, b.url[r]) }

func (b *realBackend) rebuild(r store.Role) { testenv.Rebuild(b.t, b.url[r]) }

func (b *realBackend) recorder(f *fault, _ func() time.Time) recorder {
	// Azurite keeps its own times (Progress.LastUpdated, entity stamps).
	return &tableRecorder{s: b.store, fault: f.recorder, t: b.t}
}

func (b *realBackend) close() {
	for _, name := range []string{table.RunsTable, table.ResultsTable} {
		_, _ = b.svc.DeleteTable(context.Background(), b.prefix+name, nil)
	}
}

// faultDB injects the faults of one database into a process's handle, as
// memdb's Fail and FailAfter hooks do: before an operation (nothing
// happens; Unavailable with store.ErrUnreached), or after it succeeded (its
// change stays; Unavailable without store.ErrUnreached).
type faultDB struct {
	store.DB
	f *fault
}

func (d faultDB) ListProducts(ctx context.Context, p store.Page) (r0 []domain.Product, err error) {
	if err = d.f.before("ListProducts"); err != nil {
		return
	}
	r0, err = d.DB.ListProducts(ctx, p)
	if err == nil {
		err = d.f.afterOp("ListProducts")
	}
	return
}

func (d faultDB) GetProduct(ctx context.Context, id int64) (r0 domain.Product, err error) {
	if err = d.f.before("GetProduct"); err != nil {
		return
	}
	r0, err = d.DB.GetProduct(ctx, id)
	if err == nil {
		err = d.f.afterOp("GetProduct")
	}
	return
}

func (d faultDB) CreateProduct(ctx context.Context, c domain.ProductChange) (r0 domain.Product, err error) {
	if err = d.f.before("CreateProduct"); err != nil {
		return
	}
	r0, err = d.DB.CreateProduct(ctx, c)
	if err == nil {
		err = d.f.afterOp("CreateProduct")
	}
	return
}

func (d faultDB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (r0 domain.Product, err error) {
	if err = d.f.before("UpdateProduct"); err != nil {
		return
	}
	r0, err = d.DB.UpdateProduct(ctx, id, c)
	if err == nil {
		err = d.f.afterOp("UpdateProduct")
	}
	return
}

func (d faultDB) DeleteProduct(ctx context.Context, id int64) (err error) {
	if err = d.f.before("DeleteProduct"); err != nil {
		return
	}
	err = d.DB.DeleteProduct(ctx, id)
	if err == nil {
		err = d.f.afterOp("DeleteProduct")
	}
	return
}

func (d faultDB) ListUsers(ctx context.Context, p store.Page) (r0 []domain.User, err error) {
	if err = d.f.before("ListUsers"); err != nil {
		return
	}
	r0, err = d.DB.ListUsers(ctx, p)
	if err == nil {
		err = d.f.afterOp("ListUsers")
	}
	return
}

func (d faultDB) GetUser(ctx context.Context, id int64) (r0 domain.User, err error) {
	if err = d.f.before("GetUser"); err != nil {
		return
	}
	r0, err = d.DB.GetUser(ctx, id)
	if err == nil {
		err = d.f.afterOp("GetUser")
	}
	return
}

func (d faultDB) CreateUser(ctx context.Context, c domain.UserChange) (r0 domain.User, err error) {
	if err = d.f.before("CreateUser"); err != nil {
		return
	}
	r0, err = d.DB.CreateUser(ctx, c)
	if err == nil {
		err = d.f.afterOp("CreateUser")
	}
	return
}

func (d faultDB) UpdateUser(ctx context.Context, id int64, c domain.UserChange) (r0 domain.User, err error) {
	if err = d.f.before("UpdateUser"); err != nil {
		return
	}
	r0, err = d.DB.UpdateUser(ctx, id, c)
	if err == nil {
		err = d.f.afterOp("UpdateUser")
	}
	return
}

func (d faultDB) DeleteUser(ctx context.Context, id int64) (err error) {
	if err = d.f.before("DeleteUser"); err != nil {
		return
	}
	err = d.DB.DeleteUser(ctx, id)
	if err == nil {
		err = d.f.afterOp("DeleteUser")
	}
	return
}

func (d faultDB) LoadProduct(ctx context.Context, id int64) (r0 domain.Product, r1 bool, err error) {
	if err = d.f.before("LoadProduct"); err != nil {
		return
	}
	r0, r1, err = d.DB.LoadProduct(ctx, id)
	if err == nil {
		err = d.f.afterOp("LoadProduct")
	}
	return
}

func (d faultDB) PutProduct(ctx context.Context, p domain.Product, expect *domain.Vector) (r0 store.PutResult, err error) {
	if err = d.f.before("PutProduct"); err != nil {
		return
	}
	r0, err = d.DB.PutProduct(ctx, p, expect)
	if err == nil {
		err = d.f.afterOp("PutProduct")
	}
	return
}

func (d faultDB) LoadProducts(ctx context.Context, ids []int64) (r0 map[int64]domain.Product, err error) {
	if err = d.f.before("LoadProducts"); err != nil {
		return
	}
	r0, err = d.DB.LoadProducts(ctx, ids)
	if err == nil {
		err = d.f.afterOp("LoadProducts")
	}
	return
}

func (d faultDB) PutProducts(ctx context.Context, puts []store.ProductPut) (r0 []store.PutResult, err error) {
	if err = d.f.before("PutProducts"); err != nil {
		return
	}
	r0, err = d.DB.PutProducts(ctx, puts)
	if err == nil {
		err = d.f.afterOp("PutProducts")
	}
	return
}

func (d faultDB) LoadUser(ctx context.Context, id int64) (r0 domain.User, r1 bool, err error) {
	if err = d.f.before("LoadUser"); err != nil {
		return
	}
	r0, r1, err = d.DB.LoadUser(ctx, id)
	if err == nil {
		err = d.f.afterOp("LoadUser")
	}
	return
}

func (d faultDB) PutUser(ctx context.Context, u domain.User, expect *domain.Vector) (r0 store.PutResult, err error) {
	if err = d.f.before("PutUser"); err != nil {
		return
	}
	r0, err = d.DB.PutUser(ctx, u, expect)
	if err == nil {
		err = d.f.afterOp("PutUser")
	}
	return
}

func (d faultDB) PutUsers(ctx context.Context, puts []store.UserPut) (r0 []store.PutResult, err error) {
	if err = d.f.before("PutUsers"); err != nil {
		return
	}
	r0, err = d.DB.PutUsers(ctx, puts)
	if err == nil {
		err = d.f.afterOp("PutUsers")
	}
	return
}

func (d faultDB) UserByEmail(ctx context.Context, email string) (r0 domain.User, r1 bool, err error) {
	if err = d.f.before("UserByEmail"); err != nil {
		return
	}
	r0, r1, err = d.DB.UserByEmail(ctx, email)
	if err == nil {
		err = d.f.afterOp("UserByEmail")
	}
	return
}

func (d faultDB) IDs(ctx context.Context, e domain.Entity, after int64, limit int) (r0 []int64, err error) {
	if err = d.f.before("IDs"); err != nil {
		return
	}
	r0, err = d.DB.IDs(ctx, e, after, limit)
	if err == nil {
		err = d.f.afterOp("IDs")
	}
	return
}

func (d faultDB) PendingOutbox(ctx context.Context, notSentBefore time.Time, resendBefore time.Time, limit int) (r0 []store.OutboxEntry, err error) {
	if err = d.f.before("PendingOutbox"); err != nil {
		return
	}
	r0, err = d.DB.PendingOutbox(ctx, notSentBefore, resendBefore, limit)
	if err == nil {
		err = d.f.afterOp("PendingOutbox")
	}
	return
}

func (d faultDB) MarkOutboxSent(ctx context.Context, e domain.Entity, marks []store.OutboxMark, at time.Time) (err error) {
	if err = d.f.before("MarkOutboxSent"); err != nil {
		return
	}
	err = d.DB.MarkOutboxSent(ctx, e, marks, at)
	if err == nil {
		err = d.f.afterOp("MarkOutboxSent")
	}
	return
}

func (d faultDB) AckOutbox(ctx context.Context, e domain.Entity, marks []store.OutboxMark) (err error) {
	if err = d.f.before("AckOutbox"); err != nil {
		return
	}
	err = d.DB.AckOutbox(ctx, e, marks)
	if err == nil {
		err = d.f.afterOp("AckOutbox")
	}
	return
}

func (d faultDB) OutboxDepth(ctx context.Context) (r0 int64, err error) {
	if err = d.f.before("OutboxDepth"); err != nil {
		return
	}
	r0, err = d.DB.OutboxDepth(ctx)
	if err == nil {
		err = d.f.afterOp("OutboxDepth")
	}
	return
}

func (d faultDB) Migrate(ctx context.Context) (err error) {
	if err = d.f.before("Migrate"); err != nil {
		return
	}
	err = d.DB.Migrate(ctx)
	if err == nil {
		err = d.f.afterOp("Migrate")
	}
	return
}

func (d faultDB) MaxID(ctx context.Context, e domain.Entity, parity int64) (r0 int64, err error) {
	if err = d.f.before("MaxID"); err != nil {
		return
	}
	r0, err = d.DB.MaxID(ctx, e, parity)
	if err == nil {
		err = d.f.afterOp("MaxID")
	}
	return
}

func (d faultDB) AdvanceSequence(ctx context.Context, e domain.Entity, past int64) (err error) {
	if err = d.f.before("AdvanceSequence"); err != nil {
		return
	}
	err = d.DB.AdvanceSequence(ctx, e, past)
	if err == nil {
		err = d.f.afterOp("AdvanceSequence")
	}
	return
}

func (d faultDB) Ping(ctx context.Context) (err error) {
	if err = d.f.before("Ping"); err != nil {
		return
	}
	err = d.DB.Ping(ctx)
	if err == nil {
		err = d.f.afterOp("Ping")
	}
	return
}

func (d faultDB) PurgeCandidates(ctx context.Context, e domain.Entity, after int64, before time.Time, limit int) (r0 []store.Tombstone, err error) {
	if err = d.f.before("PurgeCandidates"); err != nil {
		return
	}
	r0, err = d.DB.PurgeCandidates(ctx, e, after, before, limit)
	if err == nil {
		err = d.f.afterOp("PurgeCandidates")
	}
	return
}

func (d faultDB) PurgeTombstones(ctx context.Context, e domain.Entity, ts []store.Tombstone, before time.Time) (r0 []int64, err error) {
	if err = d.f.before("PurgeTombstones"); err != nil {
		return
	}
	r0, err = d.DB.PurgeTombstones(ctx, e, ts, before)
	if err == nil {
		err = d.f.afterOp("PurgeTombstones")
	}
	return
}

func (d faultDB) ProductsInRange(ctx context.Context, after int64, upTo int64) (r0 []domain.Product, err error) {
	if err = d.f.before("ProductsInRange"); err != nil {
		return
	}
	r0, err = d.DB.ProductsInRange(ctx, after, upTo)
	if err == nil {
		err = d.f.afterOp("ProductsInRange")
	}
	return
}

func (d faultDB) UsersInRange(ctx context.Context, after int64, upTo int64) (r0 []domain.User, err error) {
	if err = d.f.before("UsersInRange"); err != nil {
		return
	}
	r0, err = d.DB.UsersInRange(ctx, after, upTo)
	if err == nil {
		err = d.f.afterOp("UsersInRange")
	}
	return
}

func (d faultDB) AddMark(ctx context.Context) (r0 store.Mark, err error) {
	if err = d.f.before("AddMark"); err != nil {
		return
	}
	r0, err = d.DB.AddMark(ctx)
	if err == nil {
		err = d.f.afterOp("AddMark")
	}
	return
}

func (d faultDB) HasMark(ctx context.Context, m store.Mark) (r0 bool, err error) {
	if err = d.f.before("HasMark"); err != nil {
		return
	}
	r0, err = d.DB.HasMark(ctx, m)
	if err == nil {
		err = d.f.afterOp("HasMark")
	}
	return
}

func (d faultDB) Peer(ctx context.Context, of store.Role) (r0 store.Peer, err error) {
	if err = d.f.before("Peer"); err != nil {
		return
	}
	r0, err = d.DB.Peer(ctx, of)
	if err == nil {
		err = d.f.afterOp("Peer")
	}
	return
}

func (d faultDB) SetPeer(ctx context.Context, of store.Role, old store.Peer, p store.Peer) (r0 bool, err error) {
	if err = d.f.before("SetPeer"); err != nil {
		return
	}
	r0, err = d.DB.SetPeer(ctx, of, old, p)
	if err == nil {
		err = d.f.afterOp("SetPeer")
	}
	return
}

// tableRecorder is the table.Store under the recorder's faults, asked as
// the in-memory Recorder asks its Fault hook: before and after every
// write (an error after leaves the write in place), before every read.
type tableRecorder struct {
	s     *table.Store
	fault func(op string, after bool) error
	t     testing.TB
}

func (tr *tableRecorder) CreateRun(ctx context.Context, r table.Run) (err error) {
	if err = tr.fault("CreateRun", false); err != nil {
		return
	}
	err = tr.s.CreateRun(ctx, r)
	if err == nil {
		err = tr.fault("CreateRun", true)
	}
	return
}

func (tr *tableRecorder) UpdateRun(ctx context.Context, r table.Run) (err error) {
	if err = tr.fault("UpdateRun", false); err != nil {
		return
	}
	err = tr.s.UpdateRun(ctx, r)
	if err == nil {
		err = tr.fault("UpdateRun", true)
	}
	return
}

func (tr *tableRecorder) PutPlanPage(ctx context.Context, runID string, p table.PlanPage) (err error) {
	if err = tr.fault("PutPlanPage", false); err != nil {
		return
	}
	err = tr.s.PutPlanPage(ctx, runID, p)
	if err == nil {
		err = tr.fault("PutPlanPage", true)
	}
	return
}

func (tr *tableRecorder) RecordRunResult(ctx context.Context, runID string, r table.Result) (r0 bool, err error) {
	if err = tr.fault("RecordRunResult", false); err != nil {
		return
	}
	r0, err = tr.s.RecordRunResult(ctx, runID, r)
	if err == nil {
		err = tr.fault("RecordRunResult", true)
	}
	return
}

func (tr *tableRecorder) RecordRealtime(ctx context.Context, rs ...table.Result) (err error) {
	if err = tr.fault("RecordRealtime", false); err != nil {
		return
	}
	err = tr.s.RecordRealtime(ctx, rs...)
	if err == nil {
		err = tr.fault("RecordRealtime", true)
	}
	return
}

func (tr *tableRecorder) RecordAttempt(ctx context.Context, partition string, e domain.Entity, id int64, a table.Attempt) (err error) {
	if err = tr.fault("RecordAttempt", false); err != nil {
		return
	}
	err = tr.s.RecordAttempt(ctx, partition, e, id, a)
	if err == nil {
		err = tr.fault("RecordAttempt", true)
	}
	return
}

func (tr *tableRecorder) RecordAttemptError(ctx context.Context, partition string, e domain.Entity, id int64, reason string) (err error) {
	if err = tr.fault("RecordAttempt", false); err != nil {
		return
	}
	err = tr.s.RecordAttemptError(ctx, partition, e, id, reason)
	if err == nil {
		err = tr.fault("RecordAttempt", true)
	}
	return
}

func (tr *tableRecorder) RecordIntent(ctx context.Context, partition string, r table.Result) (err error) {
	if err = tr.fault("RecordIntent", false); err != nil {
		return
	}
	err = tr.s.RecordIntent(ctx, partition, r)
	if err == nil {
		err = tr.fault("RecordIntent", true)
	}
	return
}

func (tr *tableRecorder) MarkRunDeleting(ctx context.Context, id string, etag azcore.ETag, at time.Time) (err error) {
	if err = tr.fault("MarkRunDeleting", false); err != nil {
		return
	}
	err = tr.s.MarkRunDeleting(ctx, id, etag, at)
	if err == nil {
		err = tr.fault("MarkRunDeleting", true)
	}
	return
}

func (tr *tableRecorder) DeleteRun(ctx context.Context, id string, parts int) (r0 int64, err error) {
	if err = tr.fault("DeleteRun", false); err != nil {
		return
	}
	r0, err = tr.s.DeleteRun(ctx, id, parts)
	if err == nil {
		err = tr.fault("DeleteRun", true)
	}
	return
}

func (tr *tableRecorder) DeleteRealtimeBefore(ctx context.Context, before time.Time) (r0 int64, err error) {
	if err = tr.fault("DeleteRealtimeBefore", false); err != nil {
		return
	}
	r0, err = tr.s.DeleteRealtimeBefore(ctx, before)
	if err == nil {
		err = tr.fault("DeleteRealtimeBefore", true)
	}
	return
}

func (tr *tableRecorder) RecordRange(ctx context.Context, runID string, r table.RangeRecord) (r0 bool, err error) {
	if err = tr.fault("RecordRange", false); err != nil {
		return
	}
	r0, err = tr.s.RecordRange(ctx, runID, r)
	if err == nil {
		err = tr.fault("RecordRange", true)
	}
	return
}

func (tr *tableRecorder) MarkRangeDone(ctx context.Context, runID string, after int64) (err error) {
	if err = tr.fault("MarkRangeDone", false); err != nil {
		return
	}
	err = tr.s.MarkRangeDone(ctx, runID, after)
	if err == nil {
		err = tr.fault("MarkRangeDone", true)
	}
	return
}

func (tr *tableRecorder) GetRun(ctx context.Context, id string) (r0 table.Run, err error) {
	if err = tr.fault("GetRun", false); err != nil {
		return
	}
	r0, err = tr.s.GetRun(ctx, id)
	return
}

func (tr *tableRecorder) ListRuns(ctx context.Context, limit int) (r0 []table.Run, err error) {
	if err = tr.fault("ListRuns", false); err != nil {
		return
	}
	r0, err = tr.s.ListRuns(ctx, limit)
	return
}

func (tr *tableRecorder) ListRunsWhere(ctx context.Context, f table.RunFilter, limit int) (r0 []table.Run, err error) {
	if err = tr.fault("ListRuns", false); err != nil {
		return
	}
	r0, err = tr.s.ListRunsWhere(ctx, f, limit)
	return
}

func (tr *tableRecorder) GetPlanPage(ctx context.Context, runID string, after int64) (r0 table.PlanPage, r1 bool, err error) {
	if err = tr.fault("GetPlanPage", false); err != nil {
		return
	}
	r0, r1, err = tr.s.GetPlanPage(ctx, runID, after)
	return
}

func (tr *tableRecorder) Intent(ctx context.Context, partition string, e domain.Entity, id int64) (r0 table.Result, r1 bool, err error) {
	if err = tr.fault("Intent", false); err != nil {
		return
	}
	r0, r1, err = tr.s.Intent(ctx, partition, e, id)
	return
}

func (tr *tableRecorder) AttemptError(ctx context.Context, partition string, e domain.Entity, id int64) (r0 string, r1 bool, err error) {
	if err = tr.fault("Attempts", false); err != nil {
		return
	}
	r0, r1, err = tr.s.AttemptError(ctx, partition, e, id)
	return
}

func (tr *tableRecorder) Attempts(ctx context.Context, partition string, e domain.Entity, id int64) (r0 int, r1 []table.Attempt, err error) {
	if err = tr.fault("Attempts", false); err != nil {
		return
	}
	r0, r1, err = tr.s.Attempts(ctx, partition, e, id)
	return
}

func (tr *tableRecorder) Item(ctx context.Context, partition string, e domain.Entity, id int64) (r0 table.Result, r1 bool, err error) {
	if err = tr.fault("Item", false); err != nil {
		return
	}
	r0, r1, err = tr.s.Item(ctx, partition, e, id)
	return
}

func (tr *tableRecorder) Progress(ctx context.Context, runID string) (r0 table.Progress, err error) {
	if err = tr.fault("Progress", false); err != nil {
		return
	}
	r0, err = tr.s.Progress(ctx, runID)
	return
}

func (tr *tableRecorder) Results(ctx context.Context, partition string, status string, limit int, token string) (r0 []table.Result, r1 string, err error) {
	if err = tr.fault("Results", false); err != nil {
		return
	}
	r0, r1, err = tr.s.Results(ctx, partition, status, limit, token)
	return
}

func (tr *tableRecorder) ExpiringRuns(ctx context.Context, before time.Time, after string, limit int) (r0 []table.ExpiringRun, err error) {
	if err = tr.fault("ExpiringRuns", false); err != nil {
		return
	}
	r0, err = tr.s.ExpiringRuns(ctx, before, after, limit)
	return
}

func (tr *tableRecorder) GetRange(ctx context.Context, runID string, after int64) (r0 table.RangeRecord, r1 bool, err error) {
	if err = tr.fault("GetRange", false); err != nil {
		return
	}
	r0, r1, err = tr.s.GetRange(ctx, runID, after)
	return
}

func (tr *tableRecorder) ReplaceFailed(ctx context.Context, runID string, r table.Result) (bool, error) {
	return tr.s.ReplaceFailed(ctx, runID, r)
}

func (tr *tableRecorder) StartRetry(ctx context.Context, runID string, round int, items int64, now time.Time) (table.Run, error) {
	return tr.s.StartRetry(ctx, runID, round, items, now)
}

func (tr *tableRecorder) Retrying(ctx context.Context, runID string) (int64, error) {
	return tr.s.Retrying(ctx, runID)
}

// The explorer's reads, faults bypassed.

func (tr *tableRecorder) fail(what string, err error) {
	tr.t.Errorf("explore: reading the recorder (%s): %v", what, err)
}

func (tr *tableRecorder) runIDs() []string {
	runs, err := tr.s.ListRuns(context.Background(), 1000)
	if err != nil {
		tr.fail("runs", err)
	}
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[len(runs)-1-i] = r.ID
	}
	return ids
}

func (tr *tableRecorder) hasResult(run string, k itemKey) bool {
	_, ok, err := tr.s.Item(context.Background(), run, k.e, k.id)
	if err != nil && !domain.IsKind(err, domain.KindNotFound) {
		tr.fail("item", err)
	}
	return ok
}

func (tr *tableRecorder) intent(partition string, e domain.Entity, id int64) (table.Result, bool) {
	res, ok, err := tr.s.Intent(context.Background(), partition, e, id)
	if err != nil {
		tr.fail("intent", err)
	}
	return res, ok
}

func (tr *tableRecorder) detail(id string) runDetail {
	ctx := context.Background()
	d := runDetail{results: map[itemKey]table.Result{}}
	run, err := tr.s.GetRun(ctx, id)
	if err != nil {
		tr.fail("run", err)
		return d
	}
	for token := ""; ; {
		page, next, err := tr.s.Results(ctx, id, "", 1000, token)
		if err != nil {
			tr.fail("results", err)
			return d
		}
		for _, res := range page {
			d.results[itemKey{res.Entity, res.ID}] = res
		}
		if token = next; token == "" {
			break
		}
	}
	prog, err := tr.s.Progress(ctx, id)
	if err != nil {
		tr.fail("progress", err)
		return d
	}
	d.compared = prog.Compared
	for _, pp := range prog.Pages {
		page, ok, err := tr.s.GetPlanPage(ctx, id, pp.After)
		if err != nil || !ok {
			tr.fail("plan page", err)
			continue
		}
		if !byRange(run) {
			d.want = append(d.want, page.IDs...)
			continue
		}
		afters := append([]int64{page.After}, page.IDs...)
		for _, after := range afters[:len(page.IDs)] {
			rg, ok, err := tr.s.GetRange(ctx, id, after)
			if err != nil {
				tr.fail("range", err)
			}
			if ok {
				d.want = append(d.want, rg.Differ...)
			}
		}
	}
	slices.Sort(d.want)
	return d
}
