// Package recordertest is the contract suite of the sync engine's recorder
// (syncer.Recorder): the same scenarios run against internal/table's Store
// (Azure Table Storage, in tests Azurite) and internal/explore's in-memory
// Recorder, so that the histories the explorer checks behave as the real
// adapter does where the engine can observe it.
//
// It imports table and domain only (syncer imports table, explore imports
// syncer): Recorder below is the part of syncer.Recorder the suite uses.
//
// Covered: runs (CreateRun, GetRun, ListRuns, ListRunsWhere by entity,
// UpdateRun's merge), plan pages (PutPlanPage, GetPlanPage, ownership),
// run results counted once (RecordRunResult, Progress, Item, Results by
// status and in pages), attempts (RecordAttempt, Attempts, AttemptError,
// Retrying), intents (RecordIntent, Intent), real-time outcomes ordered by
// their version vectors (RecordRealtime, Item of a day), compared ranges
// (RecordRange, GetRange, MarkRangeDone) and retention (ExpiringRuns,
// MarkRunDeleting, DeleteRun, DeleteRealtimeBefore).
//
// Not covered, because the explorer's recorder answers them "not reachable
// in explored histories" (its histories have no retry rounds, no
// time-bounded listings and no real-time listings):
//   - ReplaceFailed and StartRetry (retry rounds);
//   - ListRunsWhere with MinKey or MaxKey;
//   - Results of a real-time day;
//   - PutPlanPage for a run that does not exist (the table adds the page
//     anyway; the engine never writes one).
//
// Not part of the contract, so not asserted: the order of runs created in
// the same millisecond (the table lists them by their ids' random suffix),
// how many entities DeleteRun and DeleteRealtimeBefore report (the table
// counts its counter shards and buckets), the exact value of
// Progress.LastUpdated (the storage service's clock: only that a counted
// write moves it to about now), and input validation the engine never
// trips.
package recordertest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

// Recorder is what the suite calls: the methods of syncer.Recorder it
// covers (see the package comment).
type Recorder interface {
	CreateRun(ctx context.Context, r table.Run) error
	GetRun(ctx context.Context, id string) (table.Run, error)
	ListRuns(ctx context.Context, limit int) ([]table.Run, error)
	ListRunsWhere(ctx context.Context, f table.RunFilter, limit int) ([]table.Run, error)
	UpdateRun(ctx context.Context, r table.Run) error
	GetPlanPage(ctx context.Context, runID string, after int64) (table.PlanPage, bool, error)
	PutPlanPage(ctx context.Context, runID string, p table.PlanPage) error
	RecordRunResult(ctx context.Context, runID string, r table.Result) (bool, error)
	RecordRealtime(ctx context.Context, rs ...table.Result) error
	RecordAttemptError(ctx context.Context, partition string, e domain.Entity, id int64, reason string) error
	RecordAttempt(ctx context.Context, partition string, e domain.Entity, id int64, a table.Attempt) error
	Attempts(ctx context.Context, partition string, e domain.Entity, id int64) (int, []table.Attempt, error)
	AttemptError(ctx context.Context, partition string, e domain.Entity, id int64) (string, bool, error)
	Retrying(ctx context.Context, runID string) (int64, error)
	RecordIntent(ctx context.Context, partition string, r table.Result) error
	Intent(ctx context.Context, partition string, e domain.Entity, id int64) (table.Result, bool, error)
	Item(ctx context.Context, partition string, e domain.Entity, id int64) (table.Result, bool, error)
	Progress(ctx context.Context, runID string) (table.Progress, error)
	Results(ctx context.Context, partition, status string, limit int, token string) ([]table.Result, string, error)
	ExpiringRuns(ctx context.Context, before time.Time, after string, limit int) ([]table.ExpiringRun, error)
	MarkRunDeleting(ctx context.Context, id string, etag azcore.ETag, at time.Time) error
	DeleteRun(ctx context.Context, id string, parts int) (int64, error)
	DeleteRealtimeBefore(ctx context.Context, before time.Time) (int64, error)
	RecordRange(ctx context.Context, runID string, r table.RangeRecord) (bool, error)
	GetRange(ctx context.Context, runID string, after int64) (table.RangeRecord, bool, error)
	MarkRangeDone(ctx context.Context, runID string, after int64) error
}

// Opener returns an empty recorder of the test's own (its storage cleaned
// up when the test ends) whose clock is the machine's.
type Opener func(t *testing.T) Recorder

// Run runs every scenario of the suite, each on a recorder of its own.
func Run(t *testing.T, open Opener) {
	for _, sc := range []struct {
		name string
		fn   func(t *testing.T, r Recorder)
	}{
		{"Runs", testRuns},
		{"UpdateRunMerges", testUpdateRun},
		{"PlanPages", testPlanPages},
		{"RunResultCountedOnce", testRunResultCountedOnce},
		{"ProgressCounts", testProgress},
		{"ResultsByStatus", testResults},
		{"Intents", testIntents},
		{"Attempts", testAttempts},
		{"Retrying", testRetrying},
		{"RealtimeOrder", testRealtimeOrder},
		{"ItemOfRunAndDay", testItem},
		{"Ranges", testRanges},
		{"Retention", testRetention},
		{"DeleteRealtimeBefore", testDeleteRealtime},
	} {
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			sc.fn(t, open(t))
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// ms is t in UTC to the millisecond, which every store keeps exactly.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

var (
	seq     atomic.Int64
	seqBase = time.Now().UnixNano()
)

// runIDAt is a run id as the engine makes them: 13 digits counting down
// from creation (ms), then a suffix, so ids sort newest first.
func runIDAt(at time.Time) string {
	n := seqBase + seq.Add(1)
	return fmt.Sprintf("%013d%010x", 9_999_999_999_999-at.UnixMilli(), n&0xffffffffff)
}

// newRun creates a run of entity e created at `at` (P partitions: 0 is
// the recorder's setting) and returns it as created.
func newRun(t *testing.T, r Recorder, e domain.Entity, at time.Time, parts int) table.Run {
	t.Helper()
	at = ms(at)
	run := table.Run{ID: runIDAt(at), Name: "orch", Entity: e, Trigger: "http", Input: `{"a":1}`, Status: table.RunPending,
		CreatedTime: at, LastUpdatedTime: at, Partitions: parts, Mode: "full"}
	if err := r.CreateRun(ctx(t), run); err != nil {
		t.Fatalf("create run: %v", err)
	}
	return run
}

func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func must2[T, U any](t *testing.T, what string) func(T, U, error) (T, U) {
	return func(v T, u U, err error) (T, U) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v, u
	}
}

func check(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantKind(t *testing.T, what string, err error, k domain.Kind) {
	t.Helper()
	if !domain.IsKind(err, k) {
		t.Errorf("%s: err %v, want kind %v", what, err, k)
	}
}

func ids(runs []table.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func resultIDs(rs []table.Result) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}
