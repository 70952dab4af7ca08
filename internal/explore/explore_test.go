package explore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

// TestExploreSlice is the fixed-seed slice of `make explore` that runs in
// `make test`: 2,000 histories, seeds 1-2000.
func TestExploreSlice(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	rep := Explore(Options{N: n, Seed: 1, Shrink: true})
	t.Logf("histories: %d, violations: %d (%v, %d with a restore or rebuild)", rep.Histories, rep.Violations, rep.Elapsed.Round(time.Millisecond), rep.Restored)
	for _, f := range rep.Failures {
		t.Errorf("%s", f)
	}
	if rep.Violations != 0 || rep.Histories != n {
		t.Errorf("histories %d, violations %d; want %d and 0", rep.Histories, rep.Violations, n)
	}
}

// TestHistoriesAreReproducible: a seed gives the same history, and running
// it twice does the same steps (what shrinking and reports rely on).
func TestHistoriesAreReproducible(t *testing.T) {
	for _, seed := range []uint64{1, 42, 2245} {
		a, b := Run(Generate(seed)), Run(Generate(seed))
		if strings.Join(stripRuns(a.Steps), "\n") != strings.Join(stripRuns(b.Steps), "\n") {
			t.Errorf("seed %d: two runs differ:\n%s\n---\n%s", seed, strings.Join(a.Steps, "\n"), strings.Join(b.Steps, "\n"))
		}
	}
}

// stripRuns drops run ids (random by design) from step descriptions.
func stripRuns(steps []string) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		fs := strings.Fields(s)
		for j := range fs {
			if j > 0 && fs[j-1] == "run" {
				fs[j] = "R"
			}
		}
		out[i] = strings.Join(fs, " ")
	}
	return out
}

// TestRecorderCountsOnce: a run's result is added once with its count, as
// internal/table's transaction does; a fault after applying keeps the write.
func TestRecorderCountsOnce(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		fault     func(op string, after bool) error
		wantAdded bool
		wantErr   bool
		wantCount int64
	}{
		{"ok", nil, true, false, 1},
		{"fails before", func(op string, after bool) error {
			if !after && op == "RecordRunResult" {
				return errors.New("down")
			}
			return nil
		}, false, true, 0},
		{"fails after", func(op string, after bool) error {
			if after && op == "RecordRunResult" {
				return errors.New("answer lost")
			}
			return nil
		}, true, true, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecorder()
			if err := r.CreateRun(ctx, table.Run{ID: "r1", Entity: domain.EntityProduct}); err != nil {
				t.Fatal(err)
			}
			r.Fault = tt.fault
			res := table.Result{Entity: domain.EntityProduct, ID: 1, Status: table.StatusUpdated}
			added, err := r.RecordRunResult(ctx, "r1", res)
			if added != tt.wantAdded || (err != nil) != tt.wantErr {
				t.Fatalf("added %v, err %v", added, err)
			}
			r.Fault = nil
			again, err := r.RecordRunResult(ctx, "r1", res)
			if err != nil || again == (tt.wantCount == 1) {
				t.Fatalf("second record: added %v, err %v", again, err)
			}
			p, err := r.Progress(ctx, "r1")
			if err != nil || p.Counts[table.StatusUpdated] != 1 || p.Done != 1 {
				t.Fatalf("progress %+v, %v", p, err)
			}
		})
	}
}
