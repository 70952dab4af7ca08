package syncer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/testenv"
)

// Each operator event of the sync engine, raised by the scenario that
// should raise it, once, with the fields an operator acts on.

// events returns the records of name, failing unless there are want.
func events(t *testing.T, logs *testenv.Logs, name string, want int) []map[string]any {
	t.Helper()
	got := logs.Events(name)
	if len(got) != want {
		t.Fatalf("%d %s records, want %d; log:\n%s", len(got), name, want, logs.String())
	}
	return got
}

// fields checks that rec holds each key with the value given (nil: any value).
func fields(t *testing.T, rec map[string]any, want map[string]any) {
	t.Helper()
	for k, v := range want {
		got, ok := rec[k]
		if !ok || (v != nil && fmt.Sprint(got) != fmt.Sprint(v)) {
			t.Errorf("record %v: %s = %v, want %v", rec, k, got, v)
		}
	}
}

func TestEventItemFailedAndRunConflict(t *testing.T) {
	logs := &testenv.Logs{}
	e := newEnv(t, Options{Logger: logs.Logger()})
	ctx := context.Background()
	// Item 1 changed on both sides since they agreed: a conflict.
	put(t, e.primary, at(product(1, "left", t0.Add(time.Second), false), 1, 0))
	put(t, e.fallback, at(product(1, "right", t0.Add(2*time.Second), false), 0, 1))
	run := startRun(t, e)
	m := Message{Entity: domain.EntityProduct, ID: 1, Run: run}
	for range 2 { // a redelivered message records nothing twice, logs nothing twice
		if err := e.eng.SyncItem(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	c := events(t, logs, event.ConflictRecorded, 1)[0]
	fields(t, c, map[string]any{"entity": "product", "id": 1, "runId": run, "level": "WARN"})
	if _, ok := c["detail"]; ok {
		t.Errorf("the conflict record carries the rows (names, emails) into telemetry: %v", c)
	}

	// Item 3 cannot be merged (the fallback is gone) until the retries are spent.
	put(t, e.primary, product(3, "a", t0, false))
	e.fallback.Close()
	m3 := Message{Entity: domain.EntityProduct, ID: 3, Run: run}
	if err := e.eng.SyncItem(ctx, m3); err == nil {
		t.Fatal("SyncItem succeeded with the fallback closed")
	}
	events(t, logs, event.ItemFailed, 0) // a retry is not a failure yet
	if err := e.eng.ItemPoisoned(ctx, m3); err != nil {
		t.Fatal(err)
	}
	f := events(t, logs, event.ItemFailed, 1)[0]
	fields(t, f, map[string]any{"entity": "product", "id": 3, "runId": run, "level": "ERROR", "reason": nil})
}

func TestEventRunPlannedOneSideAndRunFailed(t *testing.T) {
	logs := &testenv.Logs{}
	e := newEnv(t, Options{Logger: logs.Logger(), PageSize: 2})
	ctx := context.Background()
	for i := int64(2); i <= 8; i += 2 {
		put(t, e.fallback, product(i, fmt.Sprint("f", i), t0, false))
	}
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	e.primaryProxy.Cut()
	if pages := drainPlans(t, e); pages < 2 {
		t.Fatalf("planner pages = %d, want several", pages)
	}
	// Several pages planned from the fallback alone: one record for the run.
	r := events(t, logs, event.RunPlannedOneSide, 1)[0]
	fields(t, r, map[string]any{"runId": st.InstanceID, "database": "primary", "entity": "product"})
	// The run says so too (moving it to Running once wiped the reason).
	if got, err := e.eng.Status(ctx, st.InstanceID); err != nil || !strings.Contains(got.CustomStatus.Reason, "primary database was unavailable") {
		t.Errorf("run status = %+v, %v; want the one-side reason", got.CustomStatus, err)
	}

	events(t, logs, event.RunFailed, 0)
	if err := e.eng.PlanPoisoned(ctx, PlanMessage{Run: st.InstanceID, Entity: domain.EntityProduct, After: 4}); err != nil {
		t.Fatal(err)
	}
	f := events(t, logs, event.RunFailed, 1)[0]
	fields(t, f, map[string]any{"runId": st.InstanceID, "entity": "product", "trigger": "http", "level": "ERROR", "reason": nil})
	events(t, logs, event.NightlyRunFinished, 0) // not a nightly run
}

// The relay timer notices that the nightly runs have ended, even though
// nobody reads their status, and logs each once with its counts.
func TestEventNightlyRunFinished(t *testing.T) {
	logs := &testenv.Logs{}
	now := time.Now()
	e := newEnv(t, Options{Logger: logs.Logger(), Clock: func() time.Time { return now }})
	ctx := context.Background()
	put(t, e.primary, product(1, "a", t0, false))
	put(t, e.fallback, product(2, "b", t0, false))
	if err := e.eng.Nightly(ctx); err != nil {
		t.Fatal(err)
	}
	drainPlans(t, e)
	drain(t, e.items, e.eng.SyncItem)
	events(t, logs, event.NightlyRunFinished, 0)
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	recs := events(t, logs, event.NightlyRunFinished, 2) // products and users
	byEntity := map[string]map[string]any{}
	for _, r := range recs {
		byEntity[fmt.Sprint(r["entity"])] = r
	}
	p := byEntity["product"]
	fields(t, p, map[string]any{"status": RunCompleted, "total": 2, "runId": nil, "durationSeconds": nil})
	counts, _ := p["counts"].(map[string]any)
	if fmt.Sprint(counts[StatusCreated]) != "2" || fmt.Sprint(counts[StatusFailed]) != "0" {
		t.Errorf("product nightly counts = %v, want created 2, failed 0", counts)
	}
	fields(t, byEntity["user"], map[string]any{"status": RunCompleted, "total": 0})

	// The next looks find nothing new.
	now = now.Add(2 * time.Minute)
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	events(t, logs, event.NightlyRunFinished, 2)

	last, ok, err := e.eng.LastNightly(ctx)
	// Both runs started at the same (frozen) time: either is the newest.
	if err != nil || !ok || last.Status != RunCompleted || last.FinishedTime == "" || byEntity[string(last.Entity)]["runId"] != last.ID {
		t.Errorf("LastNightly = %+v, %v, %v; want a nightly run, completed, with its finished time", last, ok, err)
	}
}

func TestEventOutboxStaleAndRelayBacklog(t *testing.T) {
	logs := &testenv.Logs{}
	now := time.Now()
	e := newEnv(t, Options{Logger: logs.Logger(), Clock: func() time.Time { return now },
		OutboxStaleAfter: time.Minute, RelayBacklogItems: 3})
	ctx := context.Background()
	for i := range 3 {
		if _, err := e.primary.CreateProduct(ctx, domain.ProductChange{Name: ptr(fmt.Sprint("p", i)), Price: ptr(domain.Money(100))}); err != nil {
			t.Fatal(err)
		}
	}
	// Fresh entries: left to the publisher, nothing stale.
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	events(t, logs, event.RelayBacklog, 0)
	events(t, logs, event.OutboxStale, 0)

	// Two minutes on, never sent nor acknowledged: the relay carries all
	// three (a backlog at threshold 3) and the oldest has waited too long.
	now = now.Add(2 * time.Minute)
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	b := events(t, logs, event.RelayBacklog, 1)[0]
	fields(t, b, map[string]any{"database": "primary", "items": 3, "threshold": 3})
	s := events(t, logs, event.OutboxStale, 1)[0]
	fields(t, s, map[string]any{"database": "primary", "depth": 3, "thresholdSeconds": 60})
	if age, _ := s["ageSeconds"].(float64); age < 110 || age > 200 {
		t.Errorf("ageSeconds = %v, want about 120", s["ageSeconds"])
	}
	// Still stale 10 s later: not repeated within the minute; again after it.
	now = now.Add(10 * time.Second)
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	events(t, logs, event.OutboxStale, 1)
	now = now.Add(time.Minute)
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	events(t, logs, event.OutboxStale, 2)

	// Synced: acknowledged, nothing stale any more.
	drain(t, e.items, e.eng.SyncItem)
	now = now.Add(2 * time.Minute)
	if err := e.eng.Relay(ctx); err != nil {
		t.Fatal(err)
	}
	events(t, logs, event.OutboxStale, 2)
}

// A run's end is one record with its counts and its first failed and
// conflict items (with reasons), whatever their per-item records said; a
// clean run's record is info, one with failures or conflicts a warning.
func TestEventRunFinishedSummary(t *testing.T) {
	for _, tc := range []struct {
		name              string
		conflict, poison  bool
		level             string
		failed, conflicts string // the summary's items, as logged
	}{
		{name: "clean", level: "INFO"},
		{name: "conflict and failure", conflict: true, poison: true, level: "WARN",
			failed: "[map[id:3 reason:gave up after the queue's retries]]", conflicts: "[map[id:1 reason:"}, // the merge's reason follows
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &testenv.Logs{}
			e := newEnv(t, Options{Logger: logs.Logger()})
			ctx := context.Background()
			put(t, e.primary, at(product(1, "left", t0.Add(time.Second), false), 1, 0))
			if tc.conflict {
				put(t, e.fallback, at(product(1, "right", t0.Add(2*time.Second), false), 0, 1))
			}
			put(t, e.primary, product(3, "c", t0, false))
			st, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
			if err != nil {
				t.Fatal(err)
			}
			drainPlans(t, e)
			drain(t, e.items, func(ctx context.Context, m Message) error {
				if tc.poison && m.ID == 3 { // its retries spent, as the queue would
					return e.eng.ItemPoisoned(ctx, m)
				}
				return e.eng.SyncItem(ctx, m)
			})
			events(t, logs, event.RunFinished, 0) // nobody has read the status yet
			if s, err := e.eng.Status(ctx, st.InstanceID); err != nil || s.RuntimeStatus != RunCompleted {
				t.Fatalf("status = %+v, %v", s, err)
			}
			if _, err := e.eng.Status(ctx, st.InstanceID); err != nil { // read again: logged once
				t.Fatal(err)
			}
			r := events(t, logs, event.RunFinished, 1)[0]
			fields(t, r, map[string]any{"runId": st.InstanceID, "entity": "product", "trigger": "http", "mode": ModeFull,
				"status": RunCompleted, "total": 2, "level": tc.level, "durationSeconds": nil})
			if got := fmt.Sprint(r["failedItems"]); tc.failed != "" && got != tc.failed || tc.failed == "" && r["failedItems"] != nil {
				t.Errorf("failedItems = %s, want %q", got, tc.failed)
			}
			if got := fmt.Sprint(r["conflictItems"]); tc.conflicts != "" && !strings.HasPrefix(got, tc.conflicts) || tc.conflicts == "" && r["conflictItems"] != nil {
				t.Errorf("conflictItems = %s, want %q", got, tc.conflicts)
			}
			events(t, logs, event.NightlyRunFinished, 0)
		})
	}
}
