//go:build chaos

package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/devhost"
	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/testenv"
)

var storageLease = flag.Duration("storagechaos.lease", 20*time.Second,
	"devhost's queue lease in TestStorageChaos (Azure's host: 10 minutes, not configurable); a lost dequeue answer hides its messages this long")

// TestStorageChaos is the storage fault drill of `make chaos`: the app
// under devhost with every table and queue request (the handler's and the
// host's) through a fault proxy in front of Azurite. A full run (with a few
// items the fallback refuses) ends with exact counts; then, while API
// writers go on, its failed items are retried (retry-failed), a diff run
// and a verify run go, and a retention pass (the nightly timer, with
// RUN_RETENTION 2 minutes and TOMBSTONE_RETENTION a second) deletes the
// finished runs and the tombstones while the nightly runs it starts, in
// progress, are kept and finish. After the writers stop, a diff and a
// verify run find both databases identical. No client answer caused by a
// storage fault may be other than 503 with Retry-After.
//
// Lost answers of dequeues are injected like any other, since they happen:
// Azure's host dequeues with a 10-minute visibility that nothing configures
// (host.json's queues.visibilityTimeout is the delay before a failed
// message is tried again, not this lease), so a lost answer hides the
// messages it took for 10 minutes, and a run waits for them (its
// customStatus.waiting says so). With that lease the drill took over
// 10 minutes a run; it sets devhost's lease to -storagechaos.lease (20 s)
// instead, so that the same faults cost seconds and the drill minutes.
func TestStorageChaos(t *testing.T) {
	began := time.Now()
	rates := testenv.FaultRates{Busy: 0.05, Drop: 0.03, Fail: 0.02, Reset: 0.01, Delay: 0.10, MaxDelay: 300 * time.Millisecond}
	const refused = 5 // primary-only products the fallback refuses until retry-failed
	// RUN_RETENTION: longer than a retention pass takes, so the nightly runs
	// a pass starts cannot expire during it.
	const runRetention = 2 * time.Minute
	var tp, qp *testenv.FaultProxy
	s := startStackVia(t, map[string]string{"RUN_RETENTION": runRetention.String(), "TOMBSTONE_RETENTION": "1s"}, func(conn string) string {
		tp = testenv.NewFaultProxy(t, testenv.Endpoint(t, conn, "TableEndpoint"), *chaosSeed)
		qp = testenv.NewFaultProxy(t, testenv.Endpoint(t, conn, "QueueEndpoint"), *chaosSeed+1)
		return testenv.ViaFaultProxies(conn, tp, qp)
	}, func(o *devhost.Options) { o.QueueLease = *storageLease })
	c := &chaosClient{s: s, t: t}
	want := storageFixture(t, s, 4, refused)
	execDDL(t, s.fallbackURL, "ALTER TABLE products ADD CONSTRAINT drill_refuses CHECK (name <> 'refused')")
	fmt.Printf("storage chaos drill: seed %d, queue lease %s, faults on every table and queue request: %.0f%% 503 ServerBusy (not served), "+
		"%.0f%% served then answer dropped, %.0f%% served then 500 InternalError, %.0f%% connection reset, %.0f%% delayed up to %s\n",
		*chaosSeed, *storageLease, 100*rates.Busy, 100*rates.Drop, 100*rates.Fail, 100*rates.Reset, 100*rates.Delay, rates.MaxDelay)
	tp.SetRates(rates, nil)
	qp.SetRates(rates, nil)

	// 1. A full run, alone: exact counts, the refused items failed.
	start := time.Now()
	fullID := c.startRun(`{"mode":"full"}`)
	full := c.waitRun(fullID, 15*time.Minute)
	fullTook := time.Since(start)
	fmt.Printf("full run: %s in %s, counts %v (waiting said: %q)\n", full.RuntimeStatus, fullTook.Round(time.Second), full.CustomStatus.Counts, c.waiting)
	if full.RuntimeStatus != "Completed" {
		t.Fatalf("full run %s: %+v", full.RuntimeStatus, full.CustomStatus)
	}
	for st, n := range want {
		if full.CustomStatus.Counts[st] != n {
			t.Errorf("full run count %s = %d, want %d", st, full.CustomStatus.Counts[st], n)
		}
	}

	// 2. Writers: PATCHes of the products both sides hold alike, until stopped.
	stop := make(chan struct{})
	var stopOnce sync.Once
	stopWriters := func() { stopOnce.Do(func() { close(stop) }) }
	t.Cleanup(stopWriters) // also when the drill fails half-way
	writersDone := make(chan struct{})
	var patches int
	go func() {
		defer close(writersDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pid := int64(1 + i%640)
			if c.do("PATCH", fmt.Sprintf("/api/products/%d", pid), fmt.Sprintf(`{"name":"patched %d"}`, i), http.StatusOK) {
				patches++
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// 3. retry-failed, the fallback now taking the refused items.
	execDDL(t, s.fallbackURL, "ALTER TABLE products DROP CONSTRAINT drill_refuses")
	rs := c.retryFailed(fullID)
	retried := c.waitRun(fullID, 10*time.Minute)
	rc := retried.CustomStatus.Counts
	fmt.Printf("retry-failed: round %d sent %d items; run %s, counts %v\n", rs.Round, rs.Items, retried.RuntimeStatus, rc)
	if retried.RuntimeStatus != "Completed" || rc["failed"] != 0 || rc["created"]+rc["unchanged"] != want["created"]+want["unchanged"]+refused ||
		rc["updated"] != want["updated"] || rc["deleted"] != want["deleted"] || rc["conflict"] != 0 || rs.Items != refused {
		t.Errorf("after retry-failed: %s %v (round %+v), want Completed, failed 0, %d created or unchanged", retried.RuntimeStatus, rc, rs,
			want["created"]+want["unchanged"]+refused)
	}

	// 4. A diff and a verify run while the writers go on: both finish;
	// the verify run may see writes still on their way.
	diffBusy := c.waitRun(c.startRun(`{"mode":"diff"}`), 10*time.Minute)
	lastFinished := time.Now()
	verifyBusy := c.waitRun(c.startRun(`{"mode":"verify"}`), 10*time.Minute)
	fmt.Printf("diff run (writers on): %s, counts %v\n", diffBusy.RuntimeStatus, diffBusy.CustomStatus.Counts)
	fmt.Printf("verify run (writers on): %s, counts %v, differs %d\n", verifyBusy.RuntimeStatus, verifyBusy.CustomStatus.Counts, deref64(verifyBusy.CustomStatus.Differs))
	for name, st := range map[string]chaosRun{"diff": diffBusy, "verify": verifyBusy} {
		if st.RuntimeStatus != "Completed" || st.CustomStatus.Counts["failed"] != 0 || st.CustomStatus.Total != 800 {
			t.Errorf("%s run with writers on: %s total %d %v", name, st.RuntimeStatus, st.CustomStatus.Total, st.CustomStatus.Counts)
		}
	}

	// 5. A retention pass (the nightly timer), writers still on: the
	// finished runs go, the tombstones both sides hold go, and the nightly
	// runs it starts, in progress, are kept and finish.
	finished := []string{fullID, diffBusy.InstanceID, verifyBusy.InstanceID}
	// Past the run retention for every finished run, which no nightly run
	// the pass starts can reach during the pass: any of them missing
	// before a third pass is a run in progress deleted.
	time.Sleep(time.Until(lastFinished.Add(runRetention + 5*time.Second)))
	passes := 0
	retStart := time.Now()
	testenv.WaitFor(t, 5*time.Minute, "a retention pass to delete the finished runs and purge the tombstones", func() bool {
		if passes == 0 || time.Since(retStart) > time.Duration(passes)*90*time.Second {
			// A pass a storage fault cut short is finished by the next.
			c.do("POST", "/admin/functions/NightlyProductSync", `{"input":""}`, http.StatusAccepted)
			passes++
		}
		for _, id := range finished {
			code, b := c.get("/api/product-sync/"+id, nil)
			if code != http.StatusOK && code != http.StatusNotFound {
				c.fail("GET /api/product-sync/%s: %d %s", id, code, b)
			}
			if code != http.StatusNotFound {
				return false
			}
		}
		return tombstones(t, s) == 0
	})
	var nightly []chaosRun
	c.get("/api/product-sync", &nightly)
	for _, r := range nightly {
		var st chaosRun
		testenv.WaitFor(t, 10*time.Minute, "nightly run "+r.InstanceID+" to finish", func() bool {
			st = chaosRun{}
			code, b := c.get("/api/product-sync/"+r.InstanceID, &st)
			switch {
			case code == http.StatusNotFound && passes > 2:
				st.RuntimeStatus = "Completed" // finished, then deleted by a later pass
				return true
			case code != http.StatusOK && code != http.StatusAccepted:
				c.fail("GET /api/product-sync/%s: %d %s", r.InstanceID, code, b)
			}
			return code == http.StatusOK
		})
		if st.RuntimeStatus != "Completed" || st.CustomStatus.Counts["failed"] != 0 {
			t.Errorf("nightly run %s %s: %+v", r.InstanceID, st.RuntimeStatus, st.CustomStatus)
		}
	}
	fmt.Printf("retention: %d pass(es) in %s deleted the %d finished runs and purged %d tombstones from both sides; the %d nightly runs they started finished\n",
		passes, time.Since(retStart).Round(time.Second), len(finished), want["deleted"], len(nightly))

	// 6. Writers stop; a diff and a verify run find both sides identical.
	stopWriters()
	<-writersDone
	waitOutboxes(t, s, 5*time.Minute)
	diff := c.waitRun(c.startRun(`{"mode":"diff"}`), 10*time.Minute)
	verify := c.waitRun(c.startRun(`{"mode":"verify"}`), 10*time.Minute)
	tp.SetRates(testenv.FaultRates{}, nil)
	qp.SetRates(testenv.FaultRates{}, nil)
	d := differing(takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback))
	// The verify run counts every id both hold: the live rows and the
	// tombstones retention keeps (the highest id of each parity).
	live := int64(800) - want["deleted"] + int64(deletedIn(t, s.primaryURL))

	fmt.Printf("PATCHes: %d answered 200\n", patches)
	fmt.Printf("diff run: %s, counts %v\n", diff.RuntimeStatus, diff.CustomStatus.Counts)
	fmt.Printf("verify run: %s, total %d, counts %v, differs %d\n", verify.RuntimeStatus, verify.CustomStatus.Total, verify.CustomStatus.Counts, deref64(verify.CustomStatus.Differs))
	fmt.Printf("client answers: %v\n", c.answers)
	fmt.Printf("table faults:\n%squeue faults:\n%s", tp.Report(), qp.Report())
	tc, qc := tp.Counts(), qp.Counts()
	fmt.Printf("fault tallies: tables %d of %d requests faulted (busy %d, drop %d, fail %d, reset %d, delay %d); queues %d of %d (busy %d, drop %d, fail %d, reset %d, delay %d); dequeue answers lost: %d (each hid its messages for the %s lease)\n",
		tc["busy"]+tc["drop"]+tc["fail"]+tc["reset"]+tc["delay"], tc["requests"], tc["busy"], tc["drop"], tc["fail"], tc["reset"], tc["delay"],
		qc["busy"]+qc["drop"]+qc["fail"]+qc["reset"]+qc["delay"], qc["requests"], qc["busy"], qc["drop"], qc["fail"], qc["reset"], qc["delay"],
		qc["drop GET messages"], *storageLease)
	fmt.Printf("rows differing: %d\n", len(d))
	fmt.Printf("drill took %s\n", time.Since(began).Round(time.Second))
	if diff.RuntimeStatus != "Completed" || diff.CustomStatus.Counts["failed"] != 0 {
		t.Errorf("diff run %s: %+v", diff.RuntimeStatus, diff.CustomStatus)
	}
	if verify.RuntimeStatus != "Completed" || deref64(verify.CustomStatus.Differs) != 0 || verify.CustomStatus.Total != live ||
		verify.CustomStatus.Counts["unchanged"] != live {
		t.Errorf("verify run %s: %+v, want Completed, %d unchanged, none differing", verify.RuntimeStatus, verify.CustomStatus, live)
	}
	if len(d) != 0 {
		t.Errorf("rows differing: %v", d)
	}
	if len(c.bad) != 0 {
		t.Errorf("client answers other than the expected one or 503 with Retry-After: %v", c.bad)
	}
}

func deref64(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// chaosRun is a run's status as the drill reads it.
type chaosRun struct {
	InstanceID    string `json:"instanceId"`
	RuntimeStatus string `json:"runtimeStatus"`
	CustomStatus  struct {
		Total   int64            `json:"total"`
		Done    int64            `json:"done"`
		Counts  map[string]int64 `json:"counts"`
		Differs *int64           `json:"differs"`
		Reason  string           `json:"reason"`
		Waiting string           `json:"waiting"`
	} `json:"customStatus"`
}

// chaosClient is the drill's API client: it retries an answer 503 with
// Retry-After (the one answer a storage fault may give a client), tallies
// every answer, and records any other unexpected one.
type chaosClient struct {
	s       *stack
	t       *testing.T
	mu      sync.Mutex
	answers map[string]int // "200", "503 Retry-After", ...
	bad     []string
	waiting string // the last customStatus.waiting seen
}

// call sends one request until it is answered other than 503 with
// Retry-After, and returns that answer.
func (c *chaosClient) call(method, path, body string) (int, []byte) {
	for {
		code, h, b, err := c.s.try(method, path, body)
		key := fmt.Sprint(code)
		if err != nil {
			key = "error"
		} else if code == http.StatusServiceUnavailable && h.Get("Retry-After") != "" {
			key = "503 Retry-After"
		}
		c.mu.Lock()
		if c.answers == nil {
			c.answers = map[string]int{}
		}
		c.answers[key]++
		c.mu.Unlock()
		if key == "503 Retry-After" {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		if err != nil {
			c.fail("%s %s: %v", method, path, err)
		}
		return code, b
	}
}

func (c *chaosClient) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) < 20 {
		c.bad = append(c.bad, fmt.Sprintf(format, args...))
	}
}

// do is call expecting one status; it reports whether it got it.
func (c *chaosClient) do(method, path, body string, want int) bool {
	code, b := c.call(method, path, body)
	if code != want {
		c.fail("%s %s: %d %s", method, path, code, b)
		return false
	}
	return true
}

// get reads path into out (if non-nil and the answer is 200 or 202).
func (c *chaosClient) get(path string, out any) (int, []byte) {
	code, b := c.call("GET", path, "")
	if out != nil && (code == http.StatusOK || code == http.StatusAccepted) {
		if err := json.Unmarshal(b, out); err != nil {
			c.fail("GET %s: %d %s: %v", path, code, b, err)
		}
	}
	return code, b
}

func (c *chaosClient) startRun(body string) string {
	code, b := c.call("POST", "/api/start-product-sync/ProductSyncOrchestrator", body)
	if code != http.StatusAccepted {
		c.t.Fatalf("start %s: %d %s", body, code, b)
	}
	return c.s.startedID(c.t, b)
}

// retryFailed starts a retry round. A call whose storage failed after it
// had sent the round (503) is followed by one that re-sends it (202,
// resent) or, if the round is already over, finds nothing failed (409).
func (c *chaosClient) retryFailed(run string) retryStarted {
	var rs retryStarted
	first := true
	for {
		code, h, b, err := c.s.try("POST", "/api/product-sync/"+run+"/retry-failed", "")
		switch {
		case err == nil && code == http.StatusServiceUnavailable && h.Get("Retry-After") != "":
			c.mu.Lock()
			c.answers["503 Retry-After"]++
			c.mu.Unlock()
			first = false
			time.Sleep(200 * time.Millisecond)
			continue
		case err == nil && code == http.StatusAccepted:
			c.mu.Lock()
			c.answers["202"]++
			c.mu.Unlock()
			if err := json.Unmarshal(b, &rs); err != nil {
				c.t.Fatalf("retry-failed: %s: %v", b, err)
			}
			return rs
		case err == nil && code == http.StatusConflict && !first:
			c.mu.Lock()
			c.answers["409 after 503"]++
			c.mu.Unlock()
			return rs
		}
		c.t.Fatalf("retry-failed: %d %s %v", code, b, err)
	}
}

// waitRun polls a run until it is Completed or Failed.
func (c *chaosClient) waitRun(id string, timeout time.Duration) chaosRun {
	c.t.Helper()
	var st chaosRun
	testenv.WaitFor(c.t, timeout, "run "+id+" to finish", func() bool {
		st = chaosRun{}
		code, b := c.get("/api/product-sync/"+id, &st)
		if st.CustomStatus.Waiting != "" {
			c.waiting = st.CustomStatus.Waiting
		}
		switch {
		case code == http.StatusOK && (st.RuntimeStatus == "Completed" || st.RuntimeStatus == "Failed"):
			return true
		case code == http.StatusAccepted:
			return false
		}
		c.t.Fatalf("status of run %s: %d %s", id, code, b)
		return false
	})
	return st
}

// tombstones counts the deleted products either database still holds
// (one query a side: the purge goes on meanwhile), but the highest id of
// each parity, which retention keeps (a rebuilt database must not hand it
// out again).
func tombstones(t *testing.T, s *stack) int {
	t.Helper()
	ctx := context.Background()
	n := 0
	for _, url := range []string{s.primaryURL, s.fallbackURL} {
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		var k int
		err = conn.QueryRow(ctx, `SELECT count(*) FROM products p WHERE deleted_at IS NOT NULL
			AND id <> (SELECT max(id) FROM products q WHERE q.id % 2 = p.id % 2)`).Scan(&k)
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += k
	}
	return n
}

// deletedIn counts the tombstones of products the database at url holds.
func deletedIn(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM products WHERE deleted_at IS NOT NULL").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func execDDL(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatal(err)
	}
}

// storageFixture fills both databases at scale k (k*200 products: 80%
// identical, 10% in the primary only, 5% in the fallback only, 3% newer in
// the fallback, 2% deleted in the primary) and returns the full run's counts;
// the first refused of the primary-only products are named "refused".
func storageFixture(t *testing.T, s *stack, k, refused int) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	later := t0.Add(time.Second)
	prod := func(id int64, name string, at time.Time, deleted bool, pv, fv int64) domain.Product {
		p := domain.Product{ID: id, Name: name, Price: 1999, CreatedAt: t0, UpdatedAt: at, NameAt: at, DescriptionAt: t0, PriceAt: t0, Ver: domain.Vector{P: pv, F: fv}}
		if deleted {
			p.DeletedAt = &at
		}
		return p
	}
	put := func(db store.DB, p domain.Product) {
		cur, ok, err := db.LoadProduct(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		var expect *domain.Vector
		if ok {
			expect = &cur.Ver
		}
		if _, err := db.PutProduct(ctx, p, expect); err != nil {
			t.Fatal(err)
		}
	}
	id := int64(0)
	next := func() int64 { id++; return id }
	for range 160 * k {
		p := prod(next(), "same", t0, false, 1, 0)
		put(s.primary, p)
		put(s.fallback, p)
	}
	for i := range 20 * k {
		name := "primary only"
		if i < refused {
			name = "refused"
		}
		put(s.primary, prod(next(), name, t0, false, 1, 0))
	}
	for range 10 * k {
		put(s.fallback, prod(next(), "fallback only", t0, false, 0, 1))
	}
	for range 6 * k {
		i := next()
		put(s.primary, prod(i, "old", t0, false, 1, 0))
		put(s.fallback, prod(i, "new", later, false, 1, 1))
	}
	for range 4 * k {
		i := next()
		put(s.fallback, prod(i, "x", t0, false, 1, 0))
		put(s.primary, prod(i, "x", later, true, 2, 0))
	}
	return map[string]int64{"created": int64(30*k - refused), "updated": int64(6 * k), "deleted": int64(4 * k), "unchanged": int64(160 * k), "conflict": 0, "failed": int64(refused)}
}

func (s *stack) startedID(t *testing.T, b []byte) string {
	t.Helper()
	var start struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &start); err != nil || start.ID == "" {
		t.Fatalf("start answered %s: %v", b, err)
	}
	return start.ID
}
