package recordertest

import (
	"maps"
	"slices"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

// testRuns: a run reads back as created (its output left out, P set),
// twice is a Conflict, a missing one NotFound; runs list newest first,
// within the limit, without their output, by entity if asked.
func testRuns(t *testing.T, r Recorder) {
	c := ctx(t)
	t0 := ms(time.Now().Add(-time.Hour))
	old := newRun(t, r, domain.EntityProduct, t0, 4)
	mid := newRun(t, r, domain.EntityUser, t0.Add(time.Second), 0)
	created := table.Run{ID: runIDAt(t0.Add(2 * time.Second)), Entity: domain.EntityProduct, Trigger: "timer", Status: table.RunRunning,
		CreatedTime: t0.Add(2 * time.Second), LastUpdatedTime: t0.Add(2 * time.Second), Partitions: 1, Output: `{"x":1}`}
	check(t, "create run with output", r.CreateRun(c, created))
	created.Output = ""
	newest := created

	got := must[table.Run](t, "get run")(r.GetRun(c, old.ID))
	if !sameRun(got, old) {
		t.Errorf("GetRun = %+v, want %+v", got, old)
	}
	if got := must[table.Run](t, "get run")(r.GetRun(c, newest.ID)); !sameRun(got, newest) {
		t.Errorf("GetRun of a run created with an output = %+v, want %+v (no output)", got, newest)
	}
	if got := must[table.Run](t, "get run")(r.GetRun(c, mid.ID)); got.Partitions < 1 {
		t.Errorf("a run created with P 0 reads back with P %d, want the recorder's setting (>= 1)", got.Partitions)
	}
	wantKind(t, "create run twice", r.CreateRun(c, old), domain.KindConflict)
	_, err := r.GetRun(c, runIDAt(t0))
	wantKind(t, "get missing run", err, domain.KindNotFound)

	tests := []struct {
		name   string
		filter table.RunFilter
		limit  int
		want   []string
	}{
		{"all", table.RunFilter{}, 10, []string{newest.ID, mid.ID, old.ID}},
		{"limit", table.RunFilter{}, 2, []string{newest.ID, mid.ID}},
		{"products", table.RunFilter{Entity: domain.EntityProduct}, 10, []string{newest.ID, old.ID}},
		{"users", table.RunFilter{Entity: domain.EntityUser}, 10, []string{mid.ID}},
		{"products, limit", table.RunFilter{Entity: domain.EntityProduct}, 1, []string{newest.ID}},
	}
	for _, tc := range tests {
		runs := must[[]table.Run](t, "list runs "+tc.name)(r.ListRunsWhere(c, tc.filter, tc.limit))
		if !slices.Equal(ids(runs), tc.want) {
			t.Errorf("ListRunsWhere %s = %v, want %v", tc.name, ids(runs), tc.want)
		}
		if tc.filter == (table.RunFilter{}) {
			plain := must[[]table.Run](t, "list runs")(r.ListRuns(c, tc.limit))
			if !slices.Equal(ids(plain), tc.want) {
				t.Errorf("ListRuns %s = %v, want %v", tc.name, ids(plain), tc.want)
			}
		}
	}
	// Listed runs carry what GetRun reads, but never the cached output.
	check(t, "update run", r.UpdateRun(c, table.Run{ID: old.ID, Status: table.RunCompleted, LastUpdatedTime: t0, Output: `{"done":true}`}))
	runs := must[[]table.Run](t, "list runs")(r.ListRuns(c, 10))
	for _, run := range runs {
		if run.Output != "" {
			t.Errorf("ListRuns lists run %s with its output %q", run.ID, run.Output)
		}
		if run.ID == old.ID && (run.Status != table.RunCompleted || run.Name != old.Name || run.Input != old.Input || run.Partitions != 4) {
			t.Errorf("ListRuns lists %+v, want the run as GetRun reads it", run)
		}
	}
}

func sameRun(a, b table.Run) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Entity == b.Entity && a.Trigger == b.Trigger && a.Input == b.Input &&
		a.Status == b.Status && a.Reason == b.Reason && a.CreatedTime.Equal(b.CreatedTime) && a.LastUpdatedTime.Equal(b.LastUpdatedTime) &&
		a.Total == b.Total && maps.Equal(a.Counts, b.Counts) && a.Partitions == b.Partitions && a.Output == b.Output &&
		a.RetryRound == b.RetryRound && a.RetryTotal == b.RetryTotal && a.Mode == b.Mode && a.Compared == b.Compared
}

// testUpdateRun: UpdateRun merges the mutable fields; what it does not
// send (counts, output, compared) keeps its value, what was set at creation
// stays, and a zero time means now. A missing run is NotFound.
func testUpdateRun(t *testing.T, r Recorder) {
	c := ctx(t)
	t0 := ms(time.Now().Add(-time.Hour))
	run := newRun(t, r, domain.EntityProduct, t0, 2)

	steps := []struct {
		name   string
		update table.Run
		want   func(table.Run) table.Run
	}{
		{"running", table.Run{Status: table.RunRunning, Total: 10, LastUpdatedTime: t0.Add(time.Second)}, func(w table.Run) table.Run {
			w.Status, w.Total, w.LastUpdatedTime = table.RunRunning, 10, t0.Add(time.Second)
			return w
		}},
		{"completed with counts, output, compared", table.Run{Status: table.RunCompleted, Total: 10, LastUpdatedTime: t0.Add(2 * time.Second),
			Counts: map[string]int64{table.StatusCreated: 3, table.StatusUnchanged: 7}, Output: `{"n":10}`, Compared: 5},
			func(w table.Run) table.Run {
				w.Status, w.LastUpdatedTime, w.Output, w.Compared = table.RunCompleted, t0.Add(2*time.Second), `{"n":10}`, 5
				w.Counts = map[string]int64{table.StatusCreated: 3, table.StatusUnchanged: 7}
				return w
			}},
		{"failed, nothing else sent", table.Run{Status: table.RunFailed, Reason: "boom", Total: 10, LastUpdatedTime: t0.Add(3 * time.Second)},
			func(w table.Run) table.Run {
				w.Status, w.Reason, w.LastUpdatedTime = table.RunFailed, "boom", t0.Add(3*time.Second)
				return w
			}},
		{"one count more", table.Run{Status: table.RunFailed, Total: 10, LastUpdatedTime: t0.Add(4 * time.Second),
			Counts: map[string]int64{table.StatusFailed: 1}},
			func(w table.Run) table.Run {
				w.Reason, w.LastUpdatedTime = "", t0.Add(4*time.Second)
				w.Counts = map[string]int64{table.StatusCreated: 3, table.StatusUnchanged: 7, table.StatusFailed: 1}
				return w
			}},
	}
	want := run
	for _, st := range steps {
		u := st.update
		u.ID = run.ID
		// Fields set at creation are sent changed: the update keeps them.
		u.Name, u.Input, u.Trigger, u.Entity, u.Mode, u.CreatedTime = "other", "other", "other", domain.EntityUser, "verify", t0.Add(time.Hour)
		check(t, "update run: "+st.name, r.UpdateRun(c, u))
		want = st.want(want)
		if got := must[table.Run](t, "get run")(r.GetRun(c, run.ID)); !sameRun(got, want) {
			t.Errorf("after %s: GetRun = %+v, want %+v", st.name, got, want)
		}
	}
	before := time.Now().Add(-time.Second)
	check(t, "update run with no time", r.UpdateRun(c, table.Run{ID: run.ID, Status: table.RunFailed}))
	if got := must[table.Run](t, "get run")(r.GetRun(c, run.ID)); got.LastUpdatedTime.Before(before) || got.LastUpdatedTime.After(time.Now().Add(time.Second)) {
		t.Errorf("an update with no time set lastUpdatedTime %v, want now", got.LastUpdatedTime)
	}
	wantKind(t, "update missing run", r.UpdateRun(c, table.Run{ID: runIDAt(t0), Status: table.RunRunning}), domain.KindNotFound)
}

// testPlanPages: a page reads back with its ids; recording it again by its
// owner only advances its flags (never back, the plan kept); another
// message's is a Conflict; Progress lists pages by After without ids.
func testPlanPages(t *testing.T, r Recorder) {
	c := ctx(t)
	run := newRun(t, r, domain.EntityProduct, time.Now(), 2)
	if _, ok, err := r.GetPlanPage(c, run.ID, 0); err != nil || ok {
		t.Fatalf("GetPlanPage before any: ok %v, err %v", ok, err)
	}
	first := table.PlanPage{After: 0, Count: 3, IDs: []int64{1, 3, 5}, Next: 5, Owner: "m1"}
	second := table.PlanPage{After: 5, Count: 2, IDs: []int64{7, 9}, Next: 9, Last: true, Owner: "m2"}
	// Recorded out of order: Progress orders them.
	check(t, "put second page", r.PutPlanPage(c, run.ID, second))
	check(t, "put first page", r.PutPlanPage(c, run.ID, first))

	steps := []struct {
		name    string
		put     table.PlanPage
		wantErr domain.Kind
		want    table.PlanPage
	}{
		{"same again", first, 0, first},
		{"enqueued", withFlags(first, true, false), 0, withFlags(first, true, false)},
		{"not enqueued (never back)", first, 0, withFlags(first, true, false)},
		{"another plan by the owner (kept)", table.PlanPage{After: 0, Count: 1, IDs: []int64{2}, Next: 2, Owner: "m1", NextQueued: true}, 0,
			withFlags(first, true, true)},
		{"another owner", table.PlanPage{After: 0, Count: 1, IDs: []int64{2}, Next: 2, Owner: "m9", Enqueued: true}, domain.KindConflict,
			withFlags(first, true, true)},
	}
	for _, st := range steps {
		err := r.PutPlanPage(c, run.ID, st.put)
		if st.wantErr != 0 {
			wantKind(t, "put page: "+st.name, err, st.wantErr)
		} else {
			check(t, "put page: "+st.name, err)
		}
		got, ok := must2[table.PlanPage, bool](t, "get page")(r.GetPlanPage(c, run.ID, 0))
		if !ok || !samePage(got, st.want, true) {
			t.Errorf("after %s: page %+v (ok %v), want %+v", st.name, got, ok, st.want)
		}
	}
	got, ok := must2[table.PlanPage, bool](t, "get page")(r.GetPlanPage(c, run.ID, 5))
	if !ok || !samePage(got, second, true) {
		t.Errorf("second page %+v (ok %v), want %+v", got, ok, second)
	}
	p := must[table.Progress](t, "progress")(r.Progress(c, run.ID))
	if len(p.Pages) != 2 || !samePage(p.Pages[0], withFlags(first, true, true), false) || !samePage(p.Pages[1], second, false) {
		t.Errorf("Progress pages %+v, want the two pages by After", p.Pages)
	}
	for _, pg := range p.Pages {
		if pg.IDs != nil {
			t.Errorf("Progress lists page after %d with its ids", pg.After)
		}
	}
	if _, ok, err := r.GetPlanPage(c, runIDAt(time.Now()), 0); err != nil || ok {
		t.Errorf("GetPlanPage of a missing run: ok %v, err %v; want not found, no error", ok, err)
	}
}

func withFlags(p table.PlanPage, enqueued, next bool) table.PlanPage {
	p.Enqueued, p.NextQueued = enqueued, next
	return p
}

func samePage(a, b table.PlanPage, withIDs bool) bool {
	return a.After == b.After && a.Count == b.Count && a.Next == b.Next && a.Last == b.Last && a.Owner == b.Owner &&
		a.Enqueued == b.Enqueued && a.NextQueued == b.NextQueued && (!withIDs || slices.Equal(a.IDs, b.IDs))
}

// testRunResultCountedOnce: an item's first outcome is added and counted;
// a second (a redelivery, whatever its status) adds nothing and counts
// nothing. A missing run is NotFound.
func testRunResultCountedOnce(t *testing.T, r Recorder) {
	c := ctx(t)
	for _, parts := range []int{1, 3} {
		run := newRun(t, r, domain.EntityProduct, time.Now(), parts)
		at := ms(time.Now())
		first := table.Result{Entity: domain.EntityProduct, ID: 7, Status: table.StatusUpdated, Version: at.Add(-time.Minute), At: at}
		steps := []struct {
			name      string
			res       table.Result
			wantAdded bool
		}{
			{"first", first, true},
			{"same again", first, false},
			{"another status", table.Result{Entity: domain.EntityProduct, ID: 7, Status: table.StatusFailed, Reason: "x", At: at.Add(time.Second)}, false},
			{"the user of that id", table.Result{Entity: domain.EntityUser, ID: 7, Status: table.StatusCreated, At: at}, true},
		}
		for _, st := range steps {
			added := must[bool](t, "record "+st.name)(r.RecordRunResult(c, run.ID, st.res))
			if added != st.wantAdded {
				t.Errorf("P %d, %s: added %v, want %v", parts, st.name, added, st.wantAdded)
			}
		}
		p := must[table.Progress](t, "progress")(r.Progress(c, run.ID))
		if p.Counts[table.StatusUpdated] != 1 || p.Counts[table.StatusCreated] != 1 || p.Counts[table.StatusFailed] != 0 || p.Done != 2 {
			t.Errorf("P %d: counts %v, done %d; want 1 updated, 1 created, done 2", parts, p.Counts, p.Done)
		}
		got, ok := must2[table.Result, bool](t, "item")(r.Item(c, run.ID, domain.EntityProduct, 7))
		if !ok || !sameResult(got, first, false) {
			t.Errorf("P %d: Item = %+v (ok %v), want the first outcome %+v", parts, got, ok, first)
		}
	}
	_, err := r.RecordRunResult(c, runIDAt(time.Now()), table.Result{Entity: domain.EntityProduct, ID: 1, Status: table.StatusCreated})
	wantKind(t, "record result of a missing run", err, domain.KindNotFound)
}

// sameResult compares what a recorder keeps of an outcome; the vector only
// if withVer (run results do not keep it).
func sameResult(a, b table.Result, withVer bool) bool {
	return a.Entity == b.Entity && a.ID == b.ID && a.Status == b.Status && a.Reason == b.Reason && a.Detail == b.Detail &&
		a.Version.Equal(b.Version) && a.At.Equal(b.At) && a.Retry == b.Retry && a.Attempts == b.Attempts && (!withVer || a.Ver == b.Ver)
}

// testProgress: every status is counted, present at zero; differs only
// when some item has it; Done sums them; a counted write moves
// LastUpdated to about now (the storage's clock, whatever the outcome's
// At says). A missing run is NotFound.
func testProgress(t *testing.T, r Recorder) {
	c := ctx(t)
	past := ms(time.Now().Add(-48 * time.Hour))
	run := newRun(t, r, domain.EntityProduct, past, 2)
	p := must[table.Progress](t, "progress")(r.Progress(c, run.ID))
	for _, st := range table.Statuses() {
		if n, ok := p.Counts[st]; !ok || n != 0 {
			t.Errorf("a new run counts %s %d (present %v), want 0", st, n, ok)
		}
	}
	if _, ok := p.Counts[table.StatusDiffers]; ok || p.Done != 0 || len(p.Pages) != 0 {
		t.Errorf("a new run's progress %+v, want no differs, nothing done, no pages", p)
	}
	if !recent(p.LastUpdated) {
		t.Errorf("a run created now (its times %v) has progress last updated %v; want about now", past, p.LastUpdated)
	}
	want := map[string]int64{}
	var id int64
	before := time.Now()
	for _, st := range append(table.Statuses(), table.StatusDiffers) {
		for range 2 {
			id++
			want[st]++
			must[bool](t, "record")(r.RecordRunResult(c, run.ID, table.Result{Entity: domain.EntityProduct, ID: id, Status: st, At: past}))
		}
	}
	p = must[table.Progress](t, "progress")(r.Progress(c, run.ID))
	if !maps.Equal(p.Counts, want) || p.Done != id {
		t.Errorf("progress counts %v, done %d; want %v, %d", p.Counts, p.Done, want, id)
	}
	if p.LastUpdated.Before(before.Add(-5*time.Second)) || p.LastUpdated.After(time.Now().Add(5*time.Second)) {
		t.Errorf("after outcomes recorded at %v (At %v), LastUpdated is %v; want about now", before, past, p.LastUpdated)
	}
	_, err := r.Progress(c, runIDAt(time.Now()))
	wantKind(t, "progress of a missing run", err, domain.KindNotFound)
}

// recent: t is the storage's clock of a write just made.
func recent(t time.Time) bool { d := time.Since(t); return d > -5*time.Second && d < time.Minute }

// testResults: a run's results list in key order (entity, then id), all
// or one status, in pages whose token leads to the rest ("" at the end).
// A missing run is NotFound.
func testResults(t *testing.T, r Recorder) {
	c := ctx(t)
	run := newRun(t, r, domain.EntityProduct, time.Now(), 3)
	at := ms(time.Now())
	statuses := []string{table.StatusCreated, table.StatusFailed, table.StatusUpdated, table.StatusFailed, table.StatusConflict}
	var all []table.Result
	for i, st := range statuses {
		for _, e := range []domain.Entity{domain.EntityUser, domain.EntityProduct} {
			res := table.Result{Entity: e, ID: int64(100 - 10*i), Status: st, Reason: "why " + st, At: at, Attempts: i, Version: at.Add(-time.Hour)}
			if st == table.StatusConflict {
				res.Detail = `{"both":1}`
			}
			all = append(all, res)
			must[bool](t, "record")(r.RecordRunResult(c, run.ID, res))
		}
	}
	slices.SortFunc(all, func(a, b table.Result) int {
		if a.Entity != b.Entity {
			if a.Entity < b.Entity {
				return -1
			}
			return 1
		}
		return int(a.ID - b.ID)
	})
	filter := func(st string) []table.Result {
		var out []table.Result
		for _, res := range all {
			if st == "" || res.Status == st {
				out = append(out, res)
			}
		}
		return out
	}
	tests := []struct {
		status string
		limit  int
	}{
		{"", 100}, {"", 3}, {"", 1}, {table.StatusFailed, 100}, {table.StatusFailed, 2}, {table.StatusConflict, 1},
		{table.StatusDeleted, 10}, {"", 0},
	}
	for _, tc := range tests {
		want := filter(tc.status)
		var got []table.Result
		token := ""
		for pages := 0; ; pages++ {
			if pages > len(all)+1 {
				t.Fatalf("status %q limit %d: paging does not end", tc.status, tc.limit)
			}
			page, next := must2[[]table.Result, string](t, "results")(r.Results(c, run.ID, tc.status, tc.limit, token))
			if tc.limit > 0 && len(page) > tc.limit {
				t.Errorf("status %q limit %d: a page of %d", tc.status, tc.limit, len(page))
			}
			got = append(got, page...)
			if next == "" {
				break
			}
			token = next
		}
		if len(got) != len(want) {
			t.Errorf("status %q limit %d: listed %v, want %v", tc.status, tc.limit, resultIDs(got), resultIDs(want))
			continue
		}
		for i := range got {
			if !sameResult(got[i], want[i], false) {
				t.Errorf("status %q limit %d: result %d is %+v, want %+v", tc.status, tc.limit, i, got[i], want[i])
			}
		}
	}
	_, _, err := r.Results(c, runIDAt(time.Now()), "", 10, "")
	wantKind(t, "results of a missing run", err, domain.KindNotFound)
}
