package recordertest

import (
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

// fill gives run every kind of record an item leaves: a plan page, a
// result, an attempt, an intent and a range.
func fill(t *testing.T, r Recorder, run table.Run) {
	t.Helper()
	c := ctx(t)
	check(t, "plan page", r.PutPlanPage(c, run.ID, table.PlanPage{After: 0, Count: 2, IDs: []int64{1, 2}, Next: 2, Last: true, Owner: "m"}))
	must[bool](t, "result")(r.RecordRunResult(c, run.ID, table.Result{Entity: run.Entity, ID: 1, Status: table.StatusCreated}))
	check(t, "attempt", r.RecordAttemptError(c, run.ID, run.Entity, 2, "down"))
	check(t, "intent", r.RecordIntent(c, run.ID, table.Result{Entity: run.Entity, ID: 2, Status: table.StatusUpdated, Ver: domain.Vector{P: 1}}))
	must[bool](t, "range")(r.RecordRange(c, run.ID, table.RangeRecord{After: 10, UpTo: 20, Items: 1, Equal: 1}))
}

func expiringIDs(rs []table.ExpiringRun) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// testRetention: runs created before a horizon list newest first, in
// pages; marking one deleting is guarded by the listed ETag and hides it
// from GetRun and ListRuns (not from ExpiringRuns); DeleteRun removes
// everything of it, and again is harmless.
func testRetention(t *testing.T, r Recorder) {
	c := ctx(t)
	now := time.Now()
	oldest := newRun(t, r, domain.EntityProduct, now.Add(-3*time.Hour), 2)
	old := newRun(t, r, domain.EntityUser, now.Add(-2*time.Hour), 3)
	young := newRun(t, r, domain.EntityProduct, now, 2)
	for _, run := range []table.Run{oldest, old, young} {
		fill(t, r, run)
	}
	horizon := now.Add(-time.Hour)
	pages := []struct {
		after string
		limit int
		want  []string
	}{
		{"", 10, []string{old.ID, oldest.ID}},
		{"", 1, []string{old.ID}},
		{old.ID, 10, []string{oldest.ID}},
		{oldest.ID, 10, nil},
	}
	for _, pg := range pages {
		got := must[[]table.ExpiringRun](t, "expiring runs")(r.ExpiringRuns(c, horizon, pg.after, pg.limit))
		if !slices.Equal(expiringIDs(got), pg.want) {
			t.Errorf("ExpiringRuns(after %q, limit %d) = %v, want %v", pg.after, pg.limit, expiringIDs(got), pg.want)
		}
		for _, e := range got {
			if e.Deleting || e.ETag == "" || e.Entity == "" || e.Partitions < 1 {
				t.Errorf("expiring run %+v: want not deleting, with its ETag, entity and P", e)
			}
		}
	}
	listed := must[[]table.ExpiringRun](t, "expiring runs")(r.ExpiringRuns(c, horizon, "", 1))[0]
	// The run changes after it was listed: the listed ETag no longer holds.
	check(t, "update run", r.UpdateRun(c, table.Run{ID: old.ID, Status: table.RunCompleted, LastUpdatedTime: ms(now)}))
	wantKind(t, "mark deleting with a stale ETag", r.MarkRunDeleting(c, old.ID, listed.ETag, now), domain.KindConflict)
	if _, err := r.GetRun(c, old.ID); err != nil {
		t.Fatalf("a run whose mark failed is gone: %v", err)
	}
	listed = must[[]table.ExpiringRun](t, "expiring runs")(r.ExpiringRuns(c, horizon, "", 1))[0]
	check(t, "mark deleting", r.MarkRunDeleting(c, old.ID, listed.ETag, now))
	_, err := r.GetRun(c, old.ID)
	wantKind(t, "get a run being deleted", err, domain.KindNotFound)
	if runs := must[[]table.Run](t, "list runs")(r.ListRuns(c, 10)); slices.Contains(ids(runs), old.ID) {
		t.Errorf("ListRuns lists a run being deleted: %v", ids(runs))
	}
	got := must[[]table.ExpiringRun](t, "expiring runs")(r.ExpiringRuns(c, horizon, "", 10))
	if len(got) != 2 || got[0].ID != old.ID || !got[0].Deleting || got[1].Deleting {
		t.Errorf("ExpiringRuns after the mark: %+v; want the marked run first, deleting", got)
	}
	check(t, "mark deleting whatever its ETag", r.MarkRunDeleting(c, oldest.ID, azcore.ETagAny, now))
	wantKind(t, "mark a missing run deleting", r.MarkRunDeleting(c, runIDAt(now.Add(-5*time.Hour)), azcore.ETagAny, now), domain.KindNotFound)

	n := must[int64](t, "delete run")(r.DeleteRun(c, old.ID, old.Partitions))
	if n < 1 {
		t.Errorf("DeleteRun deleted %d entities", n)
	}
	if n := must[int64](t, "delete run again")(r.DeleteRun(c, old.ID, old.Partitions)); n != 0 {
		t.Errorf("DeleteRun again deleted %d", n)
	}
	_, err = r.GetRun(c, old.ID)
	wantKind(t, "get a deleted run", err, domain.KindNotFound)
	_, err = r.Progress(c, old.ID)
	wantKind(t, "progress of a deleted run", err, domain.KindNotFound)
	if got := must[[]table.ExpiringRun](t, "expiring runs")(r.ExpiringRuns(c, horizon, "", 10)); !slices.Equal(expiringIDs(got), []string{oldest.ID}) {
		t.Errorf("ExpiringRuns after DeleteRun = %v, want %v", expiringIDs(got), []string{oldest.ID})
	}
	if _, ok, _ := r.Item(c, old.ID, old.Entity, 1); ok {
		t.Errorf("a deleted run's result is still found")
	}
	if _, ok, _ := r.Intent(c, old.ID, old.Entity, 2); ok {
		t.Errorf("a deleted run's intent is still found")
	}
	if n, _, _ := r.Attempts(c, old.ID, old.Entity, 2); n != 0 {
		t.Errorf("a deleted run's item has %d attempts", n)
	}
	if _, ok, _ := r.GetPlanPage(c, old.ID, 0); ok {
		t.Errorf("a deleted run's plan page is still found")
	}
	// The other runs keep everything.
	if p := must[table.Progress](t, "progress")(r.Progress(c, young.ID)); p.Done != 2 || len(p.Pages) != 1 || p.Ranges != 1 {
		t.Errorf("a run kept lost records: %+v", p)
	}
	if _, ok, _ := r.Intent(c, oldest.ID, oldest.Entity, 2); !ok {
		t.Errorf("a run marked but not deleted lost its intent")
	}
}

// testDeleteRealtime: DeleteRealtimeBefore deletes the real-time days
// before the horizon's day, every record in them (outcomes, attempts,
// intents), and keeps that day and the later ones.
func testDeleteRealtime(t *testing.T, r Recorder) {
	c := ctx(t)
	at := day()
	days := []time.Time{at.Add(-72 * time.Hour), at.Add(-24 * time.Hour), at}
	for i, d := range days {
		id := int64(10 + i)
		check(t, "record real-time", r.RecordRealtime(c, table.Result{Entity: domain.EntityProduct, ID: id, Status: table.StatusCreated, At: d, Ver: domain.Vector{P: 1}}))
		part := table.RealtimePartition(d)
		check(t, "attempt", r.RecordAttemptError(c, part, domain.EntityProduct, id, "down"))
		check(t, "intent", r.RecordIntent(c, part, table.Result{Entity: domain.EntityProduct, ID: id, Status: table.StatusCreated, Ver: domain.Vector{P: 1}}))
	}
	// The horizon is within the middle day: only the first goes.
	if n := must[int64](t, "delete real-time")(r.DeleteRealtimeBefore(c, days[1].Add(-11*time.Hour))); n < 1 {
		t.Errorf("DeleteRealtimeBefore deleted %d", n)
	}
	if n := must[int64](t, "delete real-time again")(r.DeleteRealtimeBefore(c, days[1].Add(-11*time.Hour))); n != 0 {
		t.Errorf("DeleteRealtimeBefore again deleted %d", n)
	}
	for i, d := range days {
		id, part, kept := int64(10+i), table.RealtimePartition(d), i > 0
		_, ok, err := r.Item(c, part, domain.EntityProduct, id)
		check(t, "item", err)
		_, in, err := r.Intent(c, part, domain.EntityProduct, id)
		check(t, "intent", err)
		n, _, err := r.Attempts(c, part, domain.EntityProduct, id)
		check(t, "attempts", err)
		if ok != kept || in != kept || (n == 1) != kept {
			t.Errorf("day %s: outcome %v, intent %v, %d attempts; want kept %v", part, ok, in, n, kept)
		}
	}
}
