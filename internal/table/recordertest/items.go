package recordertest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

// day is noon UTC of today: outcomes recorded at it and around it fall in
// one real-time day.
func day() time.Time { return ms(time.Now().UTC().Truncate(24 * time.Hour).Add(12 * time.Hour)) }

// partitions are where item records live: a run (P > 1, so items spread)
// and a real-time day.
func partitions(t *testing.T, r Recorder) []string {
	run := newRun(t, r, domain.EntityProduct, time.Now(), 3)
	return []string{run.ID, table.RealtimePartition(day())}
}

// testIntents: an item's intent reads back (no At), the next one of the
// item replaces it whole, other items keep theirs.
func testIntents(t *testing.T, r Recorder) {
	c := ctx(t)
	at := day()
	for _, part := range partitions(t, r) {
		if _, ok, err := r.Intent(c, part, domain.EntityProduct, 5); err != nil || ok {
			t.Fatalf("%s: intent before any: ok %v, err %v", part, ok, err)
		}
		steps := []table.Result{
			{Entity: domain.EntityProduct, ID: 5, Status: table.StatusConflict, Reason: "both changed", Detail: `{"p":1,"f":2}`,
				Version: at, Ver: domain.Vector{P: 2, F: 1}, At: at},
			{Entity: domain.EntityProduct, ID: 5, Status: table.StatusCreated, Ver: domain.Vector{P: 3, F: 1}},
			{Entity: domain.EntityProduct, ID: 5, Status: table.StatusUpdated, Reason: strings.Repeat("r", 600), Detail: strings.Repeat("d", 3000),
				Version: at.Add(time.Second), Ver: domain.Vector{P: 3, F: 2}},
		}
		other := table.Result{Entity: domain.EntityUser, ID: 5, Status: table.StatusDeleted, Ver: domain.Vector{P: 9}}
		check(t, "record other intent", r.RecordIntent(c, part, other))
		for i, in := range steps {
			check(t, "record intent", r.RecordIntent(c, part, in))
			got, ok := must2[table.Result, bool](t, "intent")(r.Intent(c, part, domain.EntityProduct, 5))
			want := in
			want.At = time.Time{}
			if !ok || !sameResult(got, want, true) {
				t.Errorf("%s step %d: intent %+v (ok %v), want %+v", part, i, got, ok, want)
			}
		}
		got, ok := must2[table.Result, bool](t, "intent")(r.Intent(c, part, domain.EntityUser, 5))
		if !ok || !sameResult(got, other, true) {
			t.Errorf("%s: the other item's intent %+v (ok %v), want %+v", part, got, ok, other)
		}
	}
}

// testAttempts: an item's failed attempts are counted, the newest 20 kept
// oldest first with their times (now if unset), reasons (at most 1000
// bytes) and rounds; AttemptError is the last reason.
func testAttempts(t *testing.T, r Recorder) {
	c := ctx(t)
	at := day()
	for _, part := range partitions(t, r) {
		n, hist := must2[int, []table.Attempt](t, "attempts")(r.Attempts(c, part, domain.EntityProduct, 3))
		if _, ok, err := r.AttemptError(c, part, domain.EntityProduct, 3); n != 0 || len(hist) != 0 || ok || err != nil {
			t.Fatalf("%s: before any: %d attempts, %v, AttemptError ok %v, err %v", part, n, hist, ok, err)
		}
		var want []table.Attempt
		for i := range 24 {
			a := table.Attempt{At: at.Add(time.Duration(i) * time.Second), Reason: "down " + string(rune('a'+i)), Retry: i % 3}
			want = append(want, a)
			check(t, "record attempt", r.RecordAttempt(c, part, domain.EntityProduct, 3, a))
		}
		before := time.Now().Add(-time.Second)
		check(t, "record attempt error", r.RecordAttemptError(c, part, domain.EntityProduct, 3, strings.Repeat("x", 1500)))
		want = append(want, table.Attempt{Reason: strings.Repeat("x", 1000)})
		n, hist = must2[int, []table.Attempt](t, "attempts")(r.Attempts(c, part, domain.EntityProduct, 3))
		if n != 25 || len(hist) != 20 {
			t.Fatalf("%s: %d attempts, %d kept; want 25, 20", part, n, len(hist))
		}
		want = want[5:]
		for i, a := range hist {
			w := want[i]
			if i == len(hist)-1 {
				if a.At.Before(before) || a.At.After(time.Now().Add(time.Second)) || a.At.Location() != time.UTC {
					t.Errorf("%s: an attempt recorded without a time has %v, want now in UTC", part, a.At)
				}
				w.At = a.At
			}
			if !a.At.Equal(w.At) || a.Reason != w.Reason || a.Retry != w.Retry {
				t.Errorf("%s: attempt %d is at %v, round %d, reason %.20q (%d bytes); want at %v, round %d, reason %.20q (%d bytes)",
					part, i, a.At, a.Retry, a.Reason, len(a.Reason), w.At, w.Retry, w.Reason, len(w.Reason))
			}
		}
		last, ok := must2[string, bool](t, "attempt error")(r.AttemptError(c, part, domain.EntityProduct, 3))
		if !ok || last != strings.Repeat("x", 1000) {
			t.Errorf("%s: AttemptError %.20q (%d bytes, ok %v), want the last reason (1000 bytes)", part, last, len(last), ok)
		}
		if n, _, err := r.Attempts(c, part, domain.EntityUser, 3); n != 0 || err != nil {
			t.Errorf("%s: the user of that id has %d attempts (err %v), want 0", part, n, err)
		}
	}
}

// testRetrying: a run's items with a failed attempt and no outcome yet.
func testRetrying(t *testing.T, r Recorder) {
	c := ctx(t)
	run := newRun(t, r, domain.EntityProduct, time.Now(), 2)
	if n := must[int64](t, "retrying")(r.Retrying(c, run.ID)); n != 0 {
		t.Errorf("a new run has %d items retrying", n)
	}
	for _, id := range []int64{1, 2, 3} {
		check(t, "attempt", r.RecordAttemptError(c, run.ID, domain.EntityProduct, id, "down"))
		check(t, "attempt again", r.RecordAttemptError(c, run.ID, domain.EntityProduct, id, "down"))
	}
	must[bool](t, "record")(r.RecordRunResult(c, run.ID, table.Result{Entity: domain.EntityProduct, ID: 2, Status: table.StatusUpdated}))
	must[bool](t, "record")(r.RecordRunResult(c, run.ID, table.Result{Entity: domain.EntityProduct, ID: 4, Status: table.StatusUpdated}))
	if n := must[int64](t, "retrying")(r.Retrying(c, run.ID)); n != 2 {
		t.Errorf("%d items retrying, want 2 (1 and 3)", n)
	}
	_, err := r.Retrying(c, runIDAt(time.Now()))
	wantKind(t, "retrying of a missing run", err, domain.KindNotFound)
}

// testRealtimeOrder: a real-time item's outcome (Item of its day) is its
// latest by causality: one whose vector the recorded one strictly dominates
// never replaces it, nor one with an equal vector recorded earlier; a
// failure or wait (no vector) is listed while it is newer than the latest
// outcome, and an outcome recorded after it clears it.
func testRealtimeOrder(t *testing.T, r Recorder) {
	c := ctx(t)
	at := day()
	res := func(st string, ver domain.Vector, sec int, reason string) table.Result {
		return table.Result{Entity: domain.EntityProduct, Status: st, Ver: ver, At: at.Add(time.Duration(sec) * time.Second), Reason: reason,
			Version: at.Add(-time.Hour)}
	}
	v := func(p, f int64) domain.Vector { return domain.Vector{P: p, F: f} }
	long := strings.Repeat("y", 5000)
	tests := []struct {
		name  string
		calls [][]table.Result // each one RecordRealtime
		want  table.Result
	}{
		{"newer vector replaces", [][]table.Result{{res(table.StatusCreated, v(1, 0), 0, "")}, {res(table.StatusUpdated, v(2, 0), 1, "")}},
			res(table.StatusUpdated, v(2, 0), 1, "")},
		{"dominated does not replace", [][]table.Result{{res(table.StatusUpdated, v(2, 1), 0, "a")}, {res(table.StatusCreated, v(1, 1), 1, "b")}},
			res(table.StatusUpdated, v(2, 1), 0, "a")},
		{"dominated within one call", [][]table.Result{{res(table.StatusUpdated, v(2, 1), 0, "a"), res(table.StatusCreated, v(1, 1), 1, "b")}},
			res(table.StatusUpdated, v(2, 1), 0, "a")},
		{"dominating arrives first", [][]table.Result{{res(table.StatusUpdated, v(3, 3), 5, "a")}, {res(table.StatusUpdated, v(3, 2), 6, "b")}, {res(table.StatusCreated, v(1, 0), 7, "c")}},
			res(table.StatusUpdated, v(3, 3), 5, "a")},
		{"concurrent replaces", [][]table.Result{{res(table.StatusUpdated, v(2, 1), 0, "a")}, {res(table.StatusUpdated, v(1, 2), 1, "b")}},
			res(table.StatusUpdated, v(1, 2), 1, "b")},
		{"equal vector recorded earlier does not replace", [][]table.Result{{res(table.StatusUpdated, v(2, 2), 1, "a")}, {res(table.StatusUpdated, v(2, 2), 0, "b")}},
			res(table.StatusUpdated, v(2, 2), 1, "a")},
		{"equal vector recorded later replaces", [][]table.Result{{res(table.StatusUpdated, v(2, 2), 0, "a")}, {res(table.StatusUnchanged, v(2, 2), 1, "b")}},
			res(table.StatusUnchanged, v(2, 2), 1, "b")},
		{"a failure after the latest is listed", [][]table.Result{{res(table.StatusUpdated, v(1, 1), 0, "")}, {res(table.StatusFailed, v(0, 0), 1, "boom")}},
			res(table.StatusFailed, v(0, 0), 1, "boom")},
		{"a failure before the latest is not", [][]table.Result{{res(table.StatusUpdated, v(1, 1), 1, "")}, {res(table.StatusFailed, v(0, 0), 0, "boom")}},
			res(table.StatusUpdated, v(1, 1), 1, "")},
		{"a success clears the failure", [][]table.Result{{res(table.StatusFailed, v(0, 0), 0, "boom")}, {res(table.StatusUpdated, v(1, 1), 1, "")}},
			res(table.StatusUpdated, v(1, 1), 1, "")},
		{"a dominated success after a failure clears it", [][]table.Result{{res(table.StatusUpdated, v(2, 2), 0, "a")}, {res(table.StatusFailed, v(0, 0), 1, "boom")}, {res(table.StatusCreated, v(1, 1), 2, "b")}},
			res(table.StatusUpdated, v(2, 2), 0, "a")},
		{"waiting, then failed", [][]table.Result{{res(table.StatusUpdated, v(1, 1), 0, "")}, {res(table.StatusWaiting, v(0, 0), 1, "relay")}, {res(table.StatusFailed, v(0, 0), 2, "for good")}},
			res(table.StatusFailed, v(0, 0), 2, "for good")},
		{"waiting alone", [][]table.Result{{res(table.StatusWaiting, v(0, 0), 1, "relay")}},
			res(table.StatusWaiting, v(0, 0), 1, "relay")},
		{"a conflict stays listed while latest", [][]table.Result{{res(table.StatusConflict, v(2, 2), 0, "both")}, {res(table.StatusUpdated, v(1, 2), 1, "")}},
			res(table.StatusConflict, v(2, 2), 0, "both")},
		{"a long reason reads back", [][]table.Result{{res(table.StatusConflict, v(4, 1), 0, long)}},
			res(table.StatusConflict, v(4, 1), 0, long)},
	}
	for i, tc := range tests {
		id := int64(1000 + 130*i) // a bucket (64 ids) each
		for _, call := range tc.calls {
			for j := range call {
				call[j].ID = id
			}
			check(t, tc.name, r.RecordRealtime(c, call...))
		}
		want := tc.want
		want.ID = id
		got, ok := must2[table.Result, bool](t, "item")(r.Item(c, table.RealtimePartition(at), domain.EntityProduct, id))
		if !ok || !sameResult(got, want, true) {
			t.Errorf("%s: Item = %+v (ok %v), want %+v", tc.name, got, ok, want)
		}
	}
}

// testItem: Item finds an outcome in its run or its day, nowhere else.
func testItem(t *testing.T, r Recorder) {
	c := ctx(t)
	at := day()
	run := newRun(t, r, domain.EntityUser, time.Now(), 3)
	inRun := table.Result{Entity: domain.EntityUser, ID: 41, Status: table.StatusDeleted, At: at, Attempts: 2, Version: at.Add(-time.Minute)}
	must[bool](t, "record")(r.RecordRunResult(c, run.ID, inRun))
	rt := table.Result{Entity: domain.EntityUser, ID: 43, Status: table.StatusCreated, At: at, Attempts: 1, Version: at.Add(-time.Minute),
		Ver: domain.Vector{P: 1}, Detail: `{"d":1}`, Reason: "r"}
	check(t, "record real-time", r.RecordRealtime(c, rt))
	today, yesterday := table.RealtimePartition(at), table.RealtimePartition(at.Add(-24*time.Hour))
	tests := []struct {
		name      string
		partition string
		e         domain.Entity
		id        int64
		want      *table.Result
	}{
		{"in its run", run.ID, domain.EntityUser, 41, &inRun},
		{"another entity in its run", run.ID, domain.EntityProduct, 41, nil},
		{"not recorded in the run", run.ID, domain.EntityUser, 43, nil},
		{"in its day", today, domain.EntityUser, 43, &rt},
		{"a neighbour in its day", today, domain.EntityUser, 44, nil},
		{"another entity in its day", today, domain.EntityProduct, 43, nil},
		{"another day", yesterday, domain.EntityUser, 43, nil},
		{"a run's item in the day", today, domain.EntityUser, 41, nil},
		{"a missing run", runIDAt(at), domain.EntityUser, 41, nil},
	}
	for _, tc := range tests {
		got, ok := must2[table.Result, bool](t, "item "+tc.name)(r.Item(c, tc.partition, tc.e, tc.id))
		switch {
		case tc.want == nil && ok:
			t.Errorf("%s: Item = %+v, want none", tc.name, got)
		case tc.want != nil && (!ok || !sameResult(got, *tc.want, tc.partition == today)):
			t.Errorf("%s: Item = %+v (ok %v), want %+v", tc.name, got, ok, *tc.want)
		}
	}
}

// testRanges: a compared range is recorded and counted once, read back
// with its differing ids, marked done; inconsistent ranges are Invalid.
func testRanges(t *testing.T, r Recorder) {
	c := ctx(t)
	run := newRun(t, r, domain.EntityProduct, time.Now(), 3)
	first := table.RangeRecord{After: 0, UpTo: 100, Items: 5, Equal: 3, Differ: []int64{10, 20}}
	second := table.RangeRecord{After: 100, UpTo: 200, Items: 2, Equal: 2}
	steps := []struct {
		name      string
		rg        table.RangeRecord
		wantAdded bool
	}{
		{"first", first, true},
		{"first again", first, false},
		{"first again, other counts", table.RangeRecord{After: 0, UpTo: 100, Items: 1, Equal: 1}, false},
		{"second", second, true},
	}
	for _, st := range steps {
		if added := must[bool](t, "record range "+st.name)(r.RecordRange(c, run.ID, st.rg)); added != st.wantAdded {
			t.Errorf("%s: added %v, want %v", st.name, added, st.wantAdded)
		}
	}
	p := must[table.Progress](t, "progress")(r.Progress(c, run.ID))
	if p.Ranges != 2 || p.Items != 7 || p.Compared != 5 || p.Counts[table.StatusUnchanged] != 5 || p.Done != 5 {
		t.Errorf("progress %+v; want 2 ranges, 7 items, 5 compared, 5 unchanged, 5 done", p)
	}
	must[bool](t, "record")(r.RecordRunResult(c, run.ID, table.Result{Entity: domain.EntityProduct, ID: 10, Status: table.StatusUpdated}))
	if p := must[table.Progress](t, "progress")(r.Progress(c, run.ID)); p.Done != 6 || p.Counts[table.StatusUnchanged] != 5 {
		t.Errorf("after one differing item: progress %+v; want done 6", p)
	}
	reads := []struct {
		after int64
		want  *table.RangeRecord
	}{{0, &first}, {100, &second}, {50, nil}, {200, nil}}
	for _, rd := range reads {
		got, ok := must2[table.RangeRecord, bool](t, "get range")(r.GetRange(c, run.ID, rd.after))
		switch {
		case rd.want == nil && ok:
			t.Errorf("GetRange(%d) = %+v, want none", rd.after, got)
		case rd.want != nil && (!ok || !sameRange(got, *rd.want)):
			t.Errorf("GetRange(%d) = %+v (ok %v), want %+v", rd.after, got, ok, *rd.want)
		}
	}
	check(t, "mark done", r.MarkRangeDone(c, run.ID, 0))
	check(t, "mark done again", r.MarkRangeDone(c, run.ID, 0))
	done := first
	done.Done = true
	if got, ok := must2[table.RangeRecord, bool](t, "get range")(r.GetRange(c, run.ID, 0)); !ok || !sameRange(got, done) {
		t.Errorf("after MarkRangeDone: %+v (ok %v), want %+v", got, ok, done)
	}
	if got, _ := must2[table.RangeRecord, bool](t, "get range")(r.GetRange(c, run.ID, 100)); got.Done {
		t.Errorf("marking one range done marked another")
	}
	if added := must[bool](t, "record done range again")(r.RecordRange(c, run.ID, first)); added {
		t.Errorf("a range recorded again after done was added")
	}
	if got, _ := must2[table.RangeRecord, bool](t, "get range")(r.GetRange(c, run.ID, 0)); !got.Done {
		t.Errorf("recording a done range again undid done")
	}
	wantKind(t, "mark a missing range done", r.MarkRangeDone(c, run.ID, 50), domain.KindNotFound)

	invalid := []struct {
		name string
		rg   table.RangeRecord
	}{
		{"items are not equal + differing", table.RangeRecord{After: 300, UpTo: 400, Items: 4, Equal: 3}},
		{"empty interval", table.RangeRecord{After: 300, UpTo: 300}},
		{"negative after", table.RangeRecord{After: -1, UpTo: 3}},
		{"negative equal", table.RangeRecord{After: 300, UpTo: 400, Items: 0, Equal: -1, Differ: []int64{310}}},
		{"differing ids not ascending", table.RangeRecord{After: 300, UpTo: 400, Items: 2, Differ: []int64{320, 310}}},
	}
	for _, tc := range invalid {
		_, err := r.RecordRange(c, run.ID, tc.rg)
		wantKind(t, "record range with "+tc.name, err, domain.KindInvalid)
	}
	if p := must[table.Progress](t, "progress")(r.Progress(c, run.ID)); p.Ranges != 2 {
		t.Errorf("invalid ranges were counted: %d ranges", p.Ranges)
	}
	missing := runIDAt(time.Now())
	_, err := r.RecordRange(c, missing, second)
	wantKind(t, "record range of a missing run", err, domain.KindNotFound)
	_, _, err = r.GetRange(c, missing, 0)
	wantKind(t, "get range of a missing run", err, domain.KindNotFound)
}

func sameRange(a, b table.RangeRecord) bool {
	return a.After == b.After && a.UpTo == b.UpTo && a.Items == b.Items && a.Equal == b.Equal && a.Done == b.Done && slices.Equal(a.Differ, b.Differ)
}
