package table

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// TestLayoutSpreadsOneParity: the primary allocates odd ids only, and a
// run's items must still spread evenly over its partitions and shards.
func TestLayoutSpreadsOneParity(t *testing.T) {
	for _, parts := range []int{2, 8, 16} {
		l := layout{run: "r", parts: parts}
		perPart := map[string]int{}
		perShard := map[string]int{}
		const n = 16_000
		for i := range int64(n) {
			p, sh := l.item(2*i + 1)
			perPart[p]++
			perShard[p+"/"+sh]++
		}
		if len(perPart) != parts || len(perShard) != parts*Shards {
			t.Fatalf("P=%d: %d partitions and %d shards used, want %d and %d", parts, len(perPart), len(perShard), parts, parts*Shards)
		}
		mean := n / parts
		for p, c := range perPart {
			if c < mean*8/10 || c > mean*12/10 {
				t.Errorf("P=%d: partition %s holds %d items, mean %d", parts, p, c, mean)
			}
		}
	}
	if p, sh := (layout{run: "r", parts: 1}).item(21); p != "r" || sh != "count-05" {
		t.Errorf("P=1 keeps the layout of older runs: got %s %s", p, sh)
	}
}

// TestCreateRunInterrupted: storage failing between the counter shards and
// the run entity leaves no run behind, so nothing lists or reads a run
// without shards.
func TestCreateRunInterrupted(t *testing.T) {
	conn := testenv.Storage(t)
	m := regexp.MustCompile(`TableEndpoint=http://([^/]+)/`).FindStringSubmatch(conn)
	if m == nil {
		t.Fatalf("no table endpoint in the connection string")
	}
	proxy := testenv.NewProxy(t, m[1])
	viaProxy := strings.Replace(conn, "TableEndpoint=http://"+m[1]+"/", "TableEndpoint=http://"+proxy.Addr()+"/", 1)
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{MaxRetries: -1, TryTimeout: 2 * time.Second}}}
	s := newStore(t, viaProxy, opts)
	c := ctx(t)
	kept := createRun(t, s)

	s.beforeRunAdd = func() error { proxy.Cut(); return nil } // the storage goes away after the shards
	now := time.Now().UTC()
	lost := Run{ID: newRunID(), Entity: domain.EntityProduct, Status: RunPending, CreatedTime: now}
	if err := s.CreateRun(c, lost); !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("CreateRun with storage gone: %v, want Unavailable", err)
	}
	proxy.Restore()
	s.beforeRunAdd = nil

	if _, err := s.GetRun(c, lost.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("GetRun of the interrupted run: %v, want NotFound", err)
	}
	runs, err := s.ListRuns(c, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].ID != kept.ID {
		t.Errorf("ListRuns = %+v, want only %s", runs, kept.ID)
	}
	// A failed shard transaction (an id whose shards exist) writes no run.
	if err := s.CreateRun(c, kept); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("CreateRun of an existing id: %v, want Conflict", err)
	}
}

// TestProgressOfDamagedRun: a run without the shards of one partition (as
// an interrupted creation left them before shards came first) says so with
// ErrNoCounters, and the run itself stays readable.
func TestProgressOfDamagedRun(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	l := layout{run: r.ID, parts: r.Partitions}
	for i := range Shards {
		if _, err := s.results.DeleteEntity(c, l.partition(3), shardKey(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Progress(c, r.ID)
	if !errors.Is(err, ErrNoCounters) || !domain.IsKind(err, domain.KindNotFound) {
		t.Fatalf("Progress = %v, want NotFound wrapping ErrNoCounters", err)
	}
	if _, err := s.GetRun(c, r.ID); err != nil {
		t.Fatalf("GetRun of the damaged run: %v", err)
	}
}

// recordMany records n items 1..n of run r: status failed for ids in
// failed, else created/updated/deleted in turn.
func recordMany(t *testing.T, s *Store, r Run, n int64, failed ...int64) {
	t.Helper()
	c := ctx(t)
	errs := make(chan error, n)
	for id := int64(1); id <= n; id++ {
		go func() {
			st := Statuses()[id%3]
			if slices.Contains(failed, id) {
				st = StatusFailed
			}
			_, err := s.RecordRunResult(c, r.ID, Result{Entity: domain.EntityProduct, ID: id, Status: st})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestResultsAcrossPartitions: paging a run spread over partitions gives
// every result once, in id order, as a run of one partition does; no page is
// empty while it hands out a token, and the last page hands out none, also
// when the results end exactly at a page boundary.
func TestResultsAcrossPartitions(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	const n = 60
	runs := map[string]Run{}
	for _, parts := range []int{1, DefaultPartitions} {
		r := createRunP(t, s, parts)
		recordMany(t, s, r, n, 17, 41)
		runs[fmt.Sprint("P=", parts)] = r
	}
	var all, created []int64
	for id := int64(1); id <= n; id++ {
		all = append(all, id)
		if id%3 == 0 && id != 17 && id != 41 {
			created = append(created, id)
		}
	}
	tests := []struct {
		status string
		limit  int
		want   []int64
	}{
		{"", 1, all},
		{"", 7, all},
		{"", 60, all}, // exactly one page: no token, no empty second page
		{"", 30, all}, // exactly two pages
		{"", 1000, all},
		{StatusCreated, 5, created},
		{StatusFailed, 1, []int64{17, 41}},
		{StatusFailed, 2, []int64{17, 41}},
		{StatusConflict, 10, nil},
	}
	for name, r := range runs {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/limit %d", name, tt.status, tt.limit), func(t *testing.T) {
				var got []int64
				token := ""
				for pages := 1; ; pages++ {
					rs, next, err := s.Results(c, r.ID, tt.status, tt.limit, token)
					if err != nil {
						t.Fatal(err)
					}
					if len(rs) > tt.limit {
						t.Fatalf("page of %d, limit %d", len(rs), tt.limit)
					}
					if next != "" && len(rs) == 0 {
						t.Fatalf("page %d is empty but hands out a token", pages)
					}
					for _, x := range rs {
						got = append(got, x.ID)
					}
					if next == "" {
						break
					}
					if pages > 100 {
						t.Fatal("paging does not end")
					}
					token = next
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("ids %v, want %v (in order, once each)", got, tt.want)
				}
			})
		}
	}
}

// TestResultsTokenValidated: a token is opaque but checked: a tampered or
// foreign one is Invalid (400), never a query the client chose.
func TestResultsTokenValidated(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	recordMany(t, s, r, 20)
	_, next, err := s.Results(c, r.ID, "", 3, "")
	if err != nil || next == "" {
		t.Fatalf("first page: next %q, %v", next, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(next)
	var tok continuation
	if err := json.Unmarshal(raw, &tok); err != nil || len(tok.Cursors) != DefaultPartitions {
		t.Fatalf("token %s: %v, want %d cursors", raw, err, DefaultPartitions)
	}
	edit := func(f func(*continuation)) string {
		cp := tok
		cp.Cursors = slices.Clone(tok.Cursors)
		f(&cp)
		return encodeToken(cp)
	}
	bad := map[string]string{
		"fewer cursors":      edit(func(c *continuation) { c.Cursors = c.Cursors[1:] }),
		"key outside range":  edit(func(c *continuation) { c.Cursors[0] = cursor{After: "count-00"} }),
		"quote in key":       edit(func(c *continuation) { c.Cursors[0] = cursor{After: "result-' or 1 eq 1"} }),
		"half a service key": edit(func(c *continuation) { c.Cursors[0] = cursor{PK: "x"} }),
		"done with a key":    edit(func(c *continuation) { c.Cursors[0] = cursor{Done: true, PK: "x", RK: "y"} }),
		"all done":           edit(func(c *continuation) { c.Cursors = []cursor{{Done: true}} }),
		"unknown field":      base64.RawURLEncoding.EncodeToString([]byte(`{"p":"x","c":[{}],"z":1}`)),
		"too long":           strings.Repeat("A", maxToken+4),
	}
	for name, token := range bad {
		if _, _, err := s.Results(c, r.ID, "", 3, token); !domain.IsKind(err, domain.KindInvalid) {
			t.Errorf("%s: error %v, want Invalid", name, err)
		}
	}
}

// TestProgressSumsPartitions: Progress adds up the shards of every
// partition, and the items really are spread over all of them.
func TestProgressSumsPartitions(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	recordMany(t, s, r, 200, 5, 6, 7)
	p, err := s.Progress(c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p.Done != 200 || p.Counts[StatusFailed] != 3 {
		t.Fatalf("progress %+v: want 200 done, 3 failed", p)
	}
	// The items really are spread: every partition holds some.
	for _, part := range (layout{run: r.ID, parts: r.Partitions}).partitions() {
		es, err := s.queryAll(c, rangeFilter(part, "result"), "RowKey")
		if err != nil || len(es) == 0 {
			t.Errorf("partition %s: %d results, %v", part, len(es), err)
		}
	}
}

// emptyPages stands in for Table Storage's scan limits: in Azure a query
// may answer no entities and a continuation (5 s spent, or a partition
// boundary). Every other query request gets such an answer, continuing
// from where the request started.
type emptyPages struct{ n atomic.Int64 }

var partitionInFilter = regexp.MustCompile(`PartitionKey eq '([^']+)'`)

func (e *emptyPages) Do(req *policy.Request) (*http.Response, error) {
	q := req.Raw().URL.Query()
	m := partitionInFilter.FindStringSubmatch(q.Get("$filter"))
	if req.Raw().Method != http.MethodGet || m == nil || !strings.Contains(q.Get("$filter"), "result") || e.n.Add(1)%2 == 0 {
		return req.Next()
	}
	pk, rk := q.Get("NextPartitionKey"), q.Get("NextRowKey")
	if pk == "" {
		pk, rk = base64.StdEncoding.EncodeToString([]byte(m[1])), base64.StdEncoding.EncodeToString([]byte("result-"))
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json;odata=minimalmetadata")
	h.Set("x-ms-continuation-NextPartitionKey", pk)
	h.Set("x-ms-continuation-NextRowKey", rk)
	return &http.Response{StatusCode: http.StatusOK, Header: h, Request: req.Raw(),
		Body: io.NopCloser(strings.NewReader(`{"value":[]}`))}, nil
}

// TestResultsSkipEmptyServicePages (issue 14): a page that the service
// answers empty with a continuation is read on, so a client never gets an
// empty page with a token.
func TestResultsSkipEmptyServicePages(t *testing.T) {
	var ep emptyPages
	s := newStore(t, testenv.Storage(t), &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{&ep}}})
	c := ctx(t)
	for _, parts := range []int{1, DefaultPartitions} {
		r := createRunP(t, s, parts)
		recordMany(t, s, r, 12, 5, 9)
		for _, tt := range []struct {
			status string
			limit  int
			want   string
		}{{"", 5, "[1 2 3 4 5 6 7 8 9 10 11 12]"}, {StatusFailed, 1, "[5 9]"}} {
			var got []int64
			token := ""
			for pages := 1; ; pages++ {
				rs, next, err := s.Results(c, r.ID, tt.status, tt.limit, token)
				if err != nil {
					t.Fatal(err)
				}
				if len(rs) == 0 && next != "" {
					t.Fatalf("P=%d %q: page %d is empty and hands out a token", parts, tt.status, pages)
				}
				for _, x := range rs {
					got = append(got, x.ID)
				}
				if next == "" || pages > 50 {
					break
				}
				token = next
			}
			if fmt.Sprint(got) != tt.want {
				t.Errorf("P=%d %q: ids %v, want %s", parts, tt.status, got, tt.want)
			}
		}
	}
	if ep.n.Load() == 0 {
		t.Fatal("no query went through the empty-page stand-in")
	}
}

// TestPlanPageOwnership: a page's plan is written once; only its owner
// advances it, flags never go back, and ids past one binary property's
// 64 KiB round-trip.
func TestPlanPageOwnership(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	var big []int64
	for i := range int64(30_000) {
		big = append(big, 8+i*1_000_003) // 3-byte gaps: 90 KB, two properties
	}
	pages := []PlanPage{
		{After: 0, Count: 3, IDs: []int64{2, 5, 1 << 40}, Next: 1 << 40, Owner: "m1"},
		{After: 1 << 40, Count: 0, IDs: []int64{}, Next: 1 << 40, Last: true, Owner: "m2"},
		{After: 7, Count: len(big), IDs: big, Next: big[len(big)-1], Owner: "m3"},
	}
	for _, p := range pages {
		if err := s.PutPlanPage(c, r.ID, p); err != nil {
			t.Fatalf("put %d: %v", p.After, err)
		}
		got, ok, err := s.GetPlanPage(c, r.ID, p.After)
		if err != nil || !ok || !slices.Equal(got.IDs, p.IDs) || got.Count != p.Count || got.Owner != p.Owner || got.Enqueued {
			t.Fatalf("get %d: %+v (%d ids), %v, %v", p.After, got.After, len(got.IDs), ok, err)
		}
	}
	// Another message's plan for page 0: Conflict, and the page is intact.
	other := PlanPage{After: 0, Count: 1, IDs: []int64{2}, Next: 2, Last: true, Owner: "m9", Enqueued: true}
	if err := s.PutPlanPage(c, r.ID, other); !domain.IsKind(err, domain.KindConflict) {
		t.Fatalf("put by another message: %v, want Conflict", err)
	}
	// The owner's second attempt with other ids keeps the recorded ones, and
	// advances the flags only forwards.
	again := pages[0]
	again.IDs, again.Count, again.Enqueued = []int64{2}, 1, true
	if err := s.PutPlanPage(c, r.ID, again); err != nil {
		t.Fatal(err)
	}
	again.Enqueued = false
	if err := s.PutPlanPage(c, r.ID, again); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.GetPlanPage(c, r.ID, 0)
	if err != nil || !slices.Equal(got.IDs, pages[0].IDs) || !got.Enqueued || got.NextQueued {
		t.Fatalf("page 0 after the owner's updates: %+v, %v; want its first ids, enqueued", got, err)
	}
	// Progress reads the pages without their ids.
	prog, err := s.Progress(c, r.ID)
	if err != nil || len(prog.Pages) != 3 || prog.Pages[1].IDs != nil || prog.Pages[1].Count != len(big) {
		t.Fatalf("progress pages %+v, %v", prog.Pages, err)
	}
	for name, p := range map[string]PlanPage{
		"count differs":  {After: 9, Count: 2, IDs: []int64{10}},
		"not ascending":  {After: 9, Count: 2, IDs: []int64{11, 10}},
		"not past after": {After: 9, Count: 1, IDs: []int64{9}},
	} {
		if err := s.PutPlanPage(c, r.ID, p); !domain.IsKind(err, domain.KindInvalid) {
			t.Errorf("%s: %v, want Invalid", name, err)
		}
	}
}

// TestRunOutputCached: a completed run's output round-trips through the
// run entity in chunks (never cutting a character), and lists leave it out.
func TestRunOutputCached(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	r := createRun(t, s)
	out := `[` + strings.Repeat(`{"status":"failed","id":1,"reason":"é€"},`, 2_000) + `{}]` // > 2 chunks, multi-byte
	upd := r
	upd.Status, upd.Output = RunCompleted, out
	if err := s.UpdateRun(c, upd); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetRun(c, r.ID)
	if err != nil || got.Output != out {
		t.Fatalf("GetRun output: %d bytes, %v; want %d bytes back", len(got.Output), err, len(out))
	}
	runs, err := s.ListRuns(c, 5)
	if err != nil || len(runs) != 1 || runs[0].Output != "" || runs[0].Status != RunCompleted || runs[0].Partitions != r.Partitions {
		t.Fatalf("ListRuns = %+v, %v; want the run without its output", runs, err)
	}
	for _, tc := range []struct {
		s string
		n int
	}{{"", 3}, {"abc", 3}, {"aé€b", 2}, {"€€€", 4}} {
		parts := chunks(tc.s, tc.n)
		if strings.Join(parts, "") != tc.s {
			t.Errorf("chunks(%q, %d) = %q", tc.s, tc.n, parts)
		}
		for _, p := range parts {
			if len(p) > max(tc.n, 3) || !utf8.ValidString(p) {
				t.Errorf("chunks(%q, %d): piece %q", tc.s, tc.n, p)
			}
		}
	}
}
