package table

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// faultyStore is a Store whose table requests go through a fault proxy,
// with the SDK's own retries on (as in production) but quick.
func faultyStore(t *testing.T) (*Store, *testenv.FaultProxy) {
	t.Helper()
	conn := testenv.Storage(t)
	p := testenv.NewFaultProxy(t, testenv.Endpoint(t, conn, "TableEndpoint"), 1)
	opts := &aztables.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: policy.RetryOptions{
		MaxRetries: 3, RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond, TryTimeout: 5 * time.Second}}}
	return newStore(t, testenv.ViaFaultProxies(conn, p, nil), opts), p
}

// Served-then-lost answers (and 500 after success) of each kind of write:
// the SDK's retry meets what the first try did, and the write must still
// be recognised as done, once. Each case fails without the write tokens.
func TestWritesSurviveLostAnswers(t *testing.T) {
	result := func(st string, retry int) Result {
		return Result{Entity: domain.EntityProduct, ID: 7, Status: st, Retry: retry}
	}
	cases := []struct {
		name string
		prep func(t *testing.T, s *Store, run Run) // before the fault
		hit  func(s *Store) func(*http.Request) bool
		do   func(t *testing.T, s *Store, run Run) // meets the fault, then checks
	}{
		{"create run: shard batch", nil, func(*Store) func(*http.Request) bool { return testenv.Batches }, checkCreate},
		{"create run: run insert", nil, func(s *Store) func(*http.Request) bool { return testenv.Method("POST", "/"+s.names[0]) }, checkCreate},
		{"record result", nil, func(*Store) func(*http.Request) bool { return testenv.Batches }, func(t *testing.T, s *Store, run Run) {
			c := ctx(t)
			if ok, err := s.RecordRunResult(c, run.ID, result(StatusFailed, 0)); err != nil || !ok {
				t.Fatalf("RecordRunResult = %v, %v; want true, nil", ok, err)
			}
			if ok, err := s.RecordRunResult(c, run.ID, result(StatusFailed, 0)); err != nil || ok {
				t.Fatalf("RecordRunResult of a duplicate = %v, %v; want false, nil", ok, err)
			}
			wantCounts(t, s, run.ID, map[string]int64{StatusFailed: 1}, 0)
		}},
		{"start retry round", nil, func(s *Store) func(*http.Request) bool { return changeOf("/" + s.names[0]) }, func(t *testing.T, s *Store, run Run) {
			if r, err := s.StartRetry(ctx(t), run.ID, 1, 1, time.Now()); err != nil || r.RetryRound != 1 {
				t.Fatalf("StartRetry = round %d, %v; want 1, nil", r.RetryRound, err)
			}
		}},
		{"replace failed", func(t *testing.T, s *Store, run Run) {
			if _, err := s.RecordRunResult(ctx(t), run.ID, result(StatusFailed, 0)); err != nil {
				t.Fatal(err)
			}
		}, func(*Store) func(*http.Request) bool { return testenv.Batches }, func(t *testing.T, s *Store, run Run) {
			if ok, err := s.ReplaceFailed(ctx(t), run.ID, result(StatusCreated, 1)); err != nil || !ok {
				t.Fatalf("ReplaceFailed = %v, %v; want true, nil", ok, err)
			}
			wantCounts(t, s, run.ID, map[string]int64{StatusCreated: 1}, 1)
		}},
		{"attempt added", nil, func(*Store) func(*http.Request) bool { return testenv.Writes }, func(t *testing.T, s *Store, run Run) {
			checkAttempts(t, s, run, 1)
		}},
		{"attempt updated", func(t *testing.T, s *Store, run Run) {
			checkAttempts(t, s, run, 1)
		}, func(*Store) func(*http.Request) bool { return testenv.Writes }, func(t *testing.T, s *Store, run Run) {
			checkAttempts(t, s, run, 2)
		}},
		{"mark run deleting", nil, func(s *Store) func(*http.Request) bool { return changeOf("/" + s.names[0]) }, func(t *testing.T, s *Store, run Run) {
			if err := s.MarkRunDeleting(ctx(t), run.ID, mustGetRunETag(t, s, run.ID), time.Now()); err != nil {
				t.Fatalf("MarkRunDeleting: %v", err)
			}
		}},
		{"delete run", func(t *testing.T, s *Store, run Run) {
			if err := s.MarkRunDeleting(ctx(t), run.ID, azcore.ETagAny, time.Now()); err != nil {
				t.Fatal(err)
			}
		}, func(*Store) func(*http.Request) bool { return testenv.Batches }, func(t *testing.T, s *Store, run Run) {
			if _, err := s.DeleteRun(ctx(t), run.ID, 2); err != nil {
				t.Fatalf("DeleteRun: %v", err)
			}
			if left, there := entitiesOf(t, s, run.ID); left != 0 || there {
				t.Fatalf("after DeleteRun: %d entities left, run entity %v", left, there)
			}
		}},
	}
	for _, f := range []testenv.Fault{testenv.FaultDrop, testenv.FaultFail} {
		for _, tc := range cases {
			t.Run(f.String()+"/"+tc.name, func(t *testing.T) {
				s, p := faultyStore(t)
				run := createRunP(t, s, 2)
				if tc.prep != nil {
					tc.prep(t, s, run)
				}
				p.Next(f, tc.hit(s))
				tc.do(t, s, run)
				if p.Pending() != 0 {
					t.Fatalf("the fault was never injected")
				}
			})
		}
	}
}

// checkCreate starts a run (meeting the fault): it exists with its
// counters, and another creation of its id is still a Conflict.
func checkCreate(t *testing.T, s *Store, _ Run) {
	c := ctx(t)
	r := Run{ID: newRunID(), Entity: domain.EntityProduct, Status: RunPending, CreatedTime: time.Now().UTC(), Partitions: 2}
	if err := s.CreateRun(c, r); err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if prog, err := s.Progress(c, r.ID); err != nil || prog.Done != 0 {
		t.Fatalf("Progress = %+v, %v", prog, err)
	}
	if err := s.CreateRun(c, r); !domain.IsKind(err, domain.KindConflict) {
		t.Fatalf("CreateRun of an existing id: %v, want Conflict", err)
	}
}

func checkAttempts(t *testing.T, s *Store, run Run, want int) {
	t.Helper()
	c := ctx(t)
	if err := s.RecordAttempt(c, run.ID, domain.EntityProduct, 9, Attempt{Reason: "down"}); err != nil {
		t.Fatalf("RecordAttempt: %v", err)
	}
	if n, hist, err := s.Attempts(c, run.ID, domain.EntityProduct, 9); err != nil || n != want || len(hist) != want {
		t.Fatalf("Attempts = %d, %d kept, %v; want %d, each counted once", n, len(hist), err, want)
	}
}

func wantCounts(t *testing.T, s *Store, runID string, want map[string]int64, retried int64) {
	t.Helper()
	prog, err := s.Progress(ctx(t), runID)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range Statuses() {
		if prog.Counts[st] != want[st] {
			t.Errorf("count %s = %d, want %d (%+v)", st, prog.Counts[st], want[st], prog.Counts)
		}
	}
	if prog.Retried != retried {
		t.Errorf("retried = %d, want %d", prog.Retried, retried)
	}
}

func mustGetRunETag(t *testing.T, s *Store, id string) azcore.ETag {
	t.Helper()
	resp, err := s.runs.GetEntity(ctx(t), runPartition, id, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.ETag
}

// changeOf matches an update (PUT replace, PATCH merge) of an entity of
// the table at path prefix table.
func changeOf(table string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return (r.Method == http.MethodPut || r.Method == http.MethodPatch) && strings.Contains(r.URL.Path, table+"(")
	}
}
