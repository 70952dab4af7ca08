package table

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// twin returns a second Store on s's tables with a client of its own: an
// other instance of the handler, with its own bucket cache.
func twin(t *testing.T, s *Store, opts *aztables.ClientOptions) *Store {
	t.Helper()
	opts, _ = withLimits(t, opts)
	svc, err := aztables.NewServiceClientFromConnectionString(testenv.Storage(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	return New(svc, &Options{Prefix: strings.TrimSuffix(s.names[0], RunsTable)})
}

// randomDay is a far-past day of the test's own.
func randomDay(hour int) time.Time {
	return time.Date(2001, 1, 1, hour, 0, 0, 0, time.UTC).AddDate(0, 0, int(time.Now().UnixNano()%3000))
}

// listed returns item id's outcome as a read of day under status lists it
// (ok false if it is not listed).
func listedAs(t *testing.T, s *Store, day time.Time, status string, e domain.Entity, id int64) (Result, bool) {
	t.Helper()
	token := ""
	for {
		rs, next, err := s.Results(ctx(t), RealtimePartition(day), status, 1000, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Entity == e && r.ID == id {
				return r, true
			}
		}
		if next == "" {
			return Result{}, false
		}
		token = next
	}
}

// Two recorders (two instances) write outcomes of one item out of order:
// an outcome whose vector is strictly dominated by the stored one's never
// replaces it, whichever recorder writes it and however stale its view of
// the bucket; an equal vector recorded earlier does not either; a
// concurrent vector (neither dominates) does.
func TestRealtimeCausalOrder(t *testing.T) {
	a := sharedStore(t)
	b := twin(t, a, nil)
	day := randomDay(9)
	const id = 77
	at := func(m int) time.Time { return day.Add(time.Duration(m) * time.Minute) }
	steps := []struct {
		by         *Store
		status     string
		ver        domain.Vector
		at         time.Time
		wantStatus string
		wantVer    domain.Vector
	}{
		{a, StatusUpdated, domain.Vector{P: 3, F: 1}, at(2), StatusUpdated, domain.Vector{P: 3, F: 1}},
		// b read nothing of the bucket yet; the older outcome arrives later.
		{b, StatusCreated, domain.Vector{P: 1}, at(3), StatusUpdated, domain.Vector{P: 3, F: 1}},
		{b, StatusDeleted, domain.Vector{P: 2, F: 1}, at(4), StatusUpdated, domain.Vector{P: 3, F: 1}},
		// Equal vector, recorded before the stored one: kept out.
		{b, StatusConflict, domain.Vector{P: 3, F: 1}, at(1), StatusUpdated, domain.Vector{P: 3, F: 1}},
		// a's view is stale now (b wrote nothing, but b read): a newer one lands.
		{a, StatusUpdated, domain.Vector{P: 4, F: 1}, at(5), StatusUpdated, domain.Vector{P: 4, F: 1}},
		// Concurrent with the stored vector: recorded (it is not older).
		{b, StatusDeleted, domain.Vector{P: 3, F: 2}, at(6), StatusDeleted, domain.Vector{P: 3, F: 2}},
		// a wrote last before b: its cached ETag is stale, its write is older.
		{a, StatusUpdated, domain.Vector{P: 3, F: 1}, at(7), StatusDeleted, domain.Vector{P: 3, F: 2}},
		{a, StatusUpdated, domain.Vector{P: 4, F: 2}, at(8), StatusUpdated, domain.Vector{P: 4, F: 2}},
	}
	for i, st := range steps {
		if err := st.by.RecordRealtime(ctx(t), Result{Entity: domain.EntityProduct, ID: id, Status: st.status, Ver: st.ver, At: st.at}); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for _, reader := range []*Store{a, b} {
			r, ok := listedAs(t, reader, day, "", domain.EntityProduct, id)
			if !ok || r.Status != st.wantStatus || r.Ver != st.wantVer {
				t.Fatalf("step %d: item listed %v as %s %v, want %s %v", i, ok, r.Status, r.Ver, st.wantStatus, st.wantVer)
			}
		}
	}
	// Within one call, too.
	if err := a.RecordRealtime(ctx(t),
		Result{Entity: domain.EntityProduct, ID: id, Status: StatusUpdated, Ver: domain.Vector{P: 6, F: 2}, At: at(9)},
		Result{Entity: domain.EntityProduct, ID: id, Status: StatusDeleted, Ver: domain.Vector{P: 5, F: 2}, At: at(10)},
	); err != nil {
		t.Fatal(err)
	}
	if r, _ := listedAs(t, b, day, "", domain.EntityProduct, id); r.Ver != (domain.Vector{P: 6, F: 2}) {
		t.Errorf("after one call of a newer then an older outcome: %s %v, want updated {6 2}", r.Status, r.Ver)
	}
}

// A conflict stays listed under ?status=conflict, with its detail, while
// later outcomes that do not strictly dominate its vector come and go; the
// first one that does supersedes it. A conflict that arrives after an
// outcome that already superseded it is not listed.
func TestRealtimeConflictStaysListed(t *testing.T) {
	a := sharedStore(t)
	b := twin(t, a, nil)
	day := randomDay(11)
	long := `{"primary":{"description":"` + strings.Repeat("é", 3000) + `"}}`
	at := func(m int) time.Time { return day.Add(time.Duration(m) * time.Minute) }
	steps := []struct {
		by       *Store
		id       int64
		status   string
		ver      domain.Vector
		at       time.Time
		conflict bool   // listed under ?status=conflict afterwards
		latest   string // listed unfiltered as
	}{
		{a, 5, StatusConflict, domain.Vector{P: 2, F: 2}, at(1), true, StatusConflict},
		// A redelivery finding both sides equal, recorded as an update.
		{b, 5, StatusUpdated, domain.Vector{P: 2, F: 2}, at(2), true, StatusUpdated},
		{a, 5, StatusUpdated, domain.Vector{P: 1, F: 2}, at(3), true, StatusUpdated},
		{b, 5, StatusFailed, domain.Vector{}, at(4), true, StatusFailed},
		{a, 5, StatusUpdated, domain.Vector{P: 3, F: 2}, at(5), false, StatusUpdated},
		// Out of order: the superseding outcome first, then the conflict.
		{a, 9, StatusUpdated, domain.Vector{P: 4, F: 4}, at(1), false, StatusUpdated},
		{b, 9, StatusConflict, domain.Vector{P: 3, F: 4}, at(2), false, StatusUpdated},
		// A newer conflict replaces an older one.
		{b, 12, StatusConflict, domain.Vector{P: 1, F: 1}, at(1), true, StatusConflict},
		{a, 12, StatusConflict, domain.Vector{P: 2, F: 2}, at(2), true, StatusConflict},
		{b, 12, StatusDeleted, domain.Vector{P: 2, F: 2}, at(3), true, StatusDeleted},
	}
	for i, st := range steps {
		r := Result{Entity: domain.EntityUser, ID: st.id, Status: st.status, Ver: st.ver, At: st.at}
		if st.status == StatusConflict {
			r.Reason, r.Detail = "both changed", long
		}
		if err := st.by.RecordRealtime(ctx(t), r); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		c, ok := listedAs(t, a, day, StatusConflict, domain.EntityUser, st.id)
		if ok != st.conflict {
			t.Fatalf("step %d: item %d listed under conflict: %v, want %v", i, st.id, ok, st.conflict)
		}
		if ok && (c.Status != StatusConflict || c.Detail != long || c.Reason != "both changed") {
			t.Fatalf("step %d: conflict listed as %s, reason %q, detail of %d bytes", i, c.Status, c.Reason, len(c.Detail))
		}
		if l, _ := listedAs(t, b, day, "", domain.EntityUser, st.id); l.Status != st.latest {
			t.Fatalf("step %d: item %d listed as %s, want %s", i, st.id, l.Status, st.latest)
		}
	}
	if c, _ := listedAs(t, a, day, StatusConflict, domain.EntityUser, 12); c.Ver != (domain.Vector{P: 2, F: 2}) {
		t.Errorf("item 12's conflict has vector %v, want the newer {2 2}", c.Ver)
	}
	// ?status=updated lists by the latest outcome only.
	if _, ok := listedAs(t, a, day, StatusUpdated, domain.EntityUser, 12); ok {
		t.Error("item 12 (latest deleted) is listed under updated")
	}
}

// A failure stays listed under ?status=failed until an outcome recorded
// after it succeeds, even when the latest slot holds a success with a
// vector (a failure has none).
func TestRealtimeFailureStaysListed(t *testing.T) {
	s := sharedStore(t)
	day := randomDay(13)
	at := func(m int) time.Time { return day.Add(time.Duration(m) * time.Minute) }
	steps := []struct {
		status string
		ver    domain.Vector
		at     time.Time
		failed bool
	}{
		{StatusUpdated, domain.Vector{P: 2}, at(1), false},
		{StatusFailed, domain.Vector{}, at(3), true},
		{StatusUpdated, domain.Vector{P: 2}, at(2), true}, // recorded before the failure
		{StatusFailed, domain.Vector{}, at(4), true},
		{StatusUpdated, domain.Vector{P: 3}, at(5), false},
	}
	for i, st := range steps {
		if err := s.RecordRealtime(ctx(t), Result{Entity: domain.EntityProduct, ID: 200, Status: st.status, Reason: "unavailable: down", Ver: st.ver, At: st.at}); err != nil {
			t.Fatal(err)
		}
		if _, ok := listedAs(t, s, day, StatusFailed, domain.EntityProduct, 200); ok != st.failed {
			t.Fatalf("step %d: listed under failed %v, want %v", i, ok, st.failed)
		}
	}
}

// Writers of one bucket on two Stores, racing (each widened by a pause
// between knowing the bucket and writing it), all land: 64 items each
// written once, none lost to another writer's ETag.
func TestRealtimeConcurrentWritersOfOneBucket(t *testing.T) {
	a := sharedStore(t)
	b := twin(t, a, nil)
	for _, s := range []*Store{a, b} {
		s.beforeBucketWrite = func(string, string) { time.Sleep(2 * time.Millisecond) }
	}
	day := randomDay(15)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for id := int64(128); id < 192; id++ {
		s := a
		if id%2 == 1 {
			s = b
		}
		wg.Go(func() {
			errs <- s.RecordRealtime(ctx(t), Result{Entity: domain.EntityProduct, ID: id, Status: StatusCreated, Ver: domain.Vector{P: id}, At: day})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rs, next, err := a.Results(ctx(t), RealtimePartition(day), "", 1000, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 64 || next != "" {
		t.Fatalf("%d outcomes listed, want all 64", len(rs))
	}
	for i, r := range rs {
		if r.ID != int64(128+i) || r.Ver != (domain.Vector{P: r.ID}) {
			t.Fatalf("outcome %d: item %d %v", i, r.ID, r.Ver)
		}
	}
}

// requestsPolicy counts requests by method.
type requestsPolicy struct {
	mu sync.Mutex
	n  map[string]int
}

func (p *requestsPolicy) Do(req *policy.Request) (*http.Response, error) {
	p.mu.Lock()
	p.n[req.Raw().Method]++
	p.mu.Unlock()
	return req.Next()
}

func (p *requestsPolicy) take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := p.n
	p.n = map[string]int{}
	return n
}

// Ordering costs no read while a Store was the bucket's last writer (its
// cached ETag holds, also after a transaction with detail entities); a
// write after another writer's costs a read and a retry.
func TestRealtimeBucketRequests(t *testing.T) {
	cnt := &requestsPolicy{n: map[string]int{}}
	a := newStore(t, testenv.Storage(t), &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{cnt}}})
	b := twin(t, a, nil)
	day := randomDay(17)
	rec := func(s *Store, id int64, status, detail string, ver int64) {
		t.Helper()
		if err := s.RecordRealtime(ctx(t), Result{Entity: domain.EntityProduct, ID: id, Status: status, Detail: detail, Ver: domain.Vector{P: ver}, At: day}); err != nil {
			t.Fatal(err)
		}
	}
	long := strings.Repeat("x", 2000)
	steps := []struct {
		name string
		do   func()
		want map[string]int
	}{
		{"first write: read (not found), add", func() { rec(a, 1, StatusCreated, "", 1) }, map[string]int{"GET": 1, "POST": 1}},
		{"second write: one merge", func() { rec(a, 2, StatusCreated, "", 1) }, map[string]int{"PATCH": 1}},
		{"a conflict with a long detail: one transaction", func() { rec(a, 3, StatusConflict, long, 1) }, map[string]int{"POST": 1}},
		{"after the transaction: one merge", func() { rec(a, 4, StatusCreated, "", 1) }, map[string]int{"PATCH": 1}},
		{"an older outcome: nothing written", func() { rec(a, 4, StatusUpdated, "", 0) }, map[string]int{}},
		{"after another writer: 412, read, merge", func() { rec(b, 5, StatusCreated, "", 1); rec(a, 6, StatusCreated, "", 1) }, map[string]int{"PATCH": 2, "GET": 1}},
	}
	for _, st := range steps {
		cnt.take()
		st.do()
		got := cnt.take()
		if len(got) != len(st.want) {
			t.Errorf("%s: requests %v, want %v", st.name, got, st.want)
			continue
		}
		for m, n := range st.want {
			if got[m] != n {
				t.Errorf("%s: requests %v, want %v", st.name, got, st.want)
			}
		}
	}
}
