package syncer

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/domain"
	"dualsync/internal/queue"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

// drillRates are the storage faults of the short drill: throttling,
// answers lost after the request was served, 500 after success, resets
// before it, and latency, on every table and queue request.
var drillRates = testenv.FaultRates{Busy: 0.05, Drop: 0.03, Fail: 0.02, Reset: 0.01, Delay: 0.10, MaxDelay: 50 * time.Millisecond}

// TestStorageFaultDrill is the short, fixed-seed storage fault drill (the
// long one is `make chaos`): a full run over 380 products, with the engine's
// tables and queues, and the host loop's dequeues and deletes, all behind
// a fault proxy. It must end Completed with exact counts, both databases
// identical and each storage fault met at least once.
func TestStorageFaultDrill(t *testing.T) {
	if testing.Short() {
		t.Skip("storage fault drill")
	}
	e := newEnv(t, Options{})
	ctx := context.Background()
	want := drillFixture(t, e)

	conn := testenv.Storage(t)
	tp := testenv.NewFaultProxy(t, testenv.Endpoint(t, conn, "TableEndpoint"), 29)
	qp := testenv.NewFaultProxy(t, testenv.Endpoint(t, conn, "QueueEndpoint"), 30)
	fconn := testenv.ViaFaultProxies(conn, tp, qp)
	// The SDK's retries on, as in production, but quick.
	retry := policy.RetryOptions{MaxRetries: 5, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond, TryTimeout: 10 * time.Second}
	tsvc, err := aztables.NewServiceClientFromConnectionString(fconn, &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: retry}})
	if err != nil {
		t.Fatal(err)
	}
	qsvc, err := azqueue.NewServiceClientFromConnectionString(fconn, &azqueue.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: retry}})
	if err != nil {
		t.Fatal(err)
	}
	items, plans := queue.New(qsvc, e.items.Name(), true), queue.New(qsvc, e.plans.Name(), true)
	rec := table.New(tsvc, &table.Options{Prefix: e.prefix})
	eng := New(e.primary, e.fallback, items, plans, rec, Options{PageSize: 100})
	tp.SetRates(drillRates, nil)
	qp.SetRates(drillRates, nil)

	start := time.Now()
	var st RunStatus
	for try := 0; ; try++ {
		if st, err = eng.Start(ctx, StartRequest{Trigger: "http"}); err == nil {
			break
		}
		if !domain.IsKind(err, domain.KindUnavailable) || try == 4 {
			t.Fatalf("Start under faults: %v", err)
		}
	}
	d := &drillHost{t: t}
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		d.loop(ctx, plans, func(ctx context.Context, body string, dl Delivery) error {
			var m PlanMessage
			if err := plans.Decode(body, &m); err != nil {
				return err
			}
			return eng.Plan(ctx, m, dl)
		})
	})
	wg.Go(func() {
		d.loop(ctx, items, func(ctx context.Context, body string, _ Delivery) error {
			var m Message
			if err := items.Decode(body, &m); err != nil {
				return err
			}
			return eng.SyncItem(ctx, m)
		})
	})
	for ctx.Err() == nil {
		if s, err := eng.Status(ctx, st.InstanceID); err == nil && s.Final() {
			st = s
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	tp.SetRates(testenv.FaultRates{}, nil)
	qp.SetRates(testenv.FaultRates{}, nil)

	// Read back without faults.
	final, err := e.eng.Status(context.Background(), st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	differ := differingRows(t, e)
	t.Logf("storage fault drill: %s in %s; counts %v; handler errors %d; rows differing: %d",
		final.RuntimeStatus, time.Since(start).Round(time.Millisecond), final.CustomStatus.Counts, d.errors.Load(), differ)
	t.Logf("table faults:\n%s", tp.Report())
	t.Logf("queue faults:\n%s", qp.Report())
	if final.RuntimeStatus != RunCompleted || final.CustomStatus.Total != want.total() {
		t.Fatalf("run = %s with %d items, want Completed with %d (%+v)", final.RuntimeStatus, final.CustomStatus.Total, want.total(), final.CustomStatus)
	}
	for s, n := range want {
		if final.CustomStatus.Counts[s] != n {
			t.Errorf("count %s = %d, want %d", s, final.CustomStatus.Counts[s], n)
		}
	}
	if differ != 0 {
		t.Errorf("rows differing: %d", differ)
	}
	runs, err := e.eng.Runs(context.Background(), 10)
	if err != nil || len(runs) != 1 {
		t.Errorf("runs listed = %d, %v; want the one started", len(runs), err)
	}
	for _, p := range []*testenv.FaultProxy{tp, qp} {
		c := p.Counts()
		for _, f := range []testenv.Fault{testenv.FaultBusy, testenv.FaultDrop, testenv.FaultFail, testenv.FaultReset} {
			if c[f.String()] == 0 {
				t.Errorf("no %s fault was injected: the drill proves nothing about it", f)
			}
		}
	}
}

type drillCounts map[string]int64

func (c drillCounts) total() (n int64) {
	for _, v := range c {
		n += v
	}
	return n
}

// drillFixture: 250 identical products, 40 in the primary only, 30 in the
// fallback only, 40 newer in the fallback and 20 deleted in the primary.
func drillFixture(t *testing.T, e *env) drillCounts {
	t.Helper()
	later := t0.Add(time.Second)
	id := int64(0)
	next := func() int64 { id++; return id }
	for range 250 {
		p := at(product(next(), "same", t0, false), 1, 0)
		put(t, e.primary, p)
		put(t, e.fallback, p)
	}
	for range 40 {
		put(t, e.primary, at(product(next(), "primary only", t0, false), 1, 0))
	}
	for range 30 {
		put(t, e.fallback, at(product(next(), "fallback only", t0, false), 0, 1))
	}
	for range 40 {
		i := next()
		put(t, e.primary, at(product(i, "old", t0, false), 1, 0))
		put(t, e.fallback, at(product(i, "new", later, false), 1, 1))
	}
	for range 20 {
		i := next()
		put(t, e.fallback, at(product(i, "x", t0, false), 1, 0))
		put(t, e.primary, at(product(i, "x", later, true), 2, 0))
	}
	return drillCounts{StatusCreated: 70, StatusUpdated: 40, StatusDeleted: 20, StatusUnchanged: 250, StatusConflict: 0, StatusFailed: 0}
}

// differingRows counts the products whose rows differ between the two
// databases (sync metadata local to one database left out).
func differingRows(t *testing.T, e *env) int {
	t.Helper()
	read := func(db interface {
		ProductsInRange(context.Context, int64, int64) ([]domain.Product, error)
	}) map[int64]domain.Product {
		ps, err := db.ProductsInRange(context.Background(), 0, 1<<62)
		if err != nil {
			t.Fatal(err)
		}
		m := map[int64]domain.Product{}
		for _, p := range ps {
			p.Jump = domain.Jump{}
			m[p.ID] = p
		}
		return m
	}
	a, b := read(e.primary), read(e.fallback)
	n := 0
	for id, p := range a {
		if q, ok := b[id]; !ok || !reflect.DeepEqual(p, q) {
			n++
		}
	}
	for id := range b {
		if _, ok := a[id]; !ok {
			n++
		}
	}
	return n
}

// drillHost is the host's queue loop, its storage calls behind the proxy
// too: a message whose handler fails stays to be delivered again once its
// visibility ends; a dequeue whose answer is lost hides its messages as
// long (2 s here, the lease).
type drillHost struct {
	t      *testing.T
	errors atomic.Int64
}

func (d *drillHost) loop(ctx context.Context, q *queue.Queue, handle func(context.Context, string, Delivery) error) {
	n, vis := int32(16), int32(2)
	for ctx.Err() == nil {
		resp, err := q.Client().DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n, VisibilityTimeout: &vis})
		if err != nil || len(resp.Messages) == 0 {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		var wg sync.WaitGroup
		for _, m := range resp.Messages {
			wg.Go(func() {
				err := handle(ctx, *m.MessageText, Delivery{MessageID: *m.MessageID, DequeueCount: int(*m.DequeueCount)})
				if err != nil {
					if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
						d.errors.Add(1)
						d.t.Logf("handler error (the message is delivered again): %v", err)
					}
					return
				}
				// A delete that meets nothing (its answer lost, retried) is done.
				_, _ = q.Client().DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil)
			})
		}
		wg.Wait()
	}
}
