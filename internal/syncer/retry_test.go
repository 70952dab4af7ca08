package syncer

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

func TestRetryMessageValid(t *testing.T) {
	p := domain.EntityProduct
	for _, c := range []struct {
		name string
		m    Message
		want string // "" = valid
	}{
		{"a retried item of a run", Message{Entity: p, ID: 3, Run: "r", Retry: 2}, ""},
		{"a retry without a run", Message{Entity: p, ID: 3, Retry: 1}, "retry round"},
		{"a retried batch", Message{Entity: p, IDs: []int64{1, 2}, Retry: 1}, "retry round"},
		{"a negative round", Message{Entity: p, ID: 3, Run: "r", Retry: -1}, "retry round"},
	} {
		err := validMessage(c.m)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
		}
	}
}

// A failed outcome's reason counts the attempts of its own round.
func TestGiveUpReason(t *testing.T) {
	a := func(retry int, reason string) table.Attempt { return table.Attempt{Retry: retry, Reason: reason} }
	for _, c := range []struct {
		name  string
		n     int
		retry int
		hist  []table.Attempt
		want  string
	}{
		{"the run's own", 2, 0, []table.Attempt{a(0, "x"), a(0, "y")}, "gave up after 2 attempts: y"},
		{"more than the history keeps", 25, 0, []table.Attempt{a(0, "x"), a(0, "z")}, "gave up after 25 attempts: z"},
		{"one attempt", 1, 0, []table.Attempt{a(0, "x")}, "gave up after 1 attempt: x"},
		{"a retry round", 4, 1, []table.Attempt{a(0, "x"), a(0, "x"), a(1, "y"), a(1, "z")}, "gave up after 2 attempts in retry round 1: z"},
	} {
		if got := giveUpReason(c.n, c.hist[len(c.hist)-1].Reason, c.retry, c.hist); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// A run's failed item retried through the queue: the round is recorded
// first, a second request while it is under way sends its item again, the
// duplicate counts nothing, and the run completes with exact counts.
func TestRetryFailedRounds(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	put(t, e.primary, product(1, "p1", t0, false))
	put(t, e.primary, product(3, "p3", t0, false))
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	run := st.InstanceID
	drainPlans(t, e)
	// Item 3 spends its retries (as if its target refused it twice).
	n := drain(t, e.items, func(ctx context.Context, m Message) error {
		if m.ID != 3 {
			return e.eng.SyncItem(ctx, m)
		}
		for range 2 {
			if err := e.rec.RecordAttemptError(ctx, run, m.Entity, m.ID, "invalid: the database rejected a value: check constraint \"c\" of table products (SQLSTATE 23514)"); err != nil {
				return err
			}
		}
		return e.eng.ItemPoisoned(ctx, m)
	})
	if n != 2 {
		t.Fatalf("item messages = %d, want 2", n)
	}
	check := func(step, status string, created, failed, pending int64) RunStatus {
		t.Helper()
		st, err := e.eng.Status(ctx, run)
		if err != nil {
			t.Fatal(err)
		}
		cs := st.CustomStatus
		if st.RuntimeStatus != status || cs.Counts[StatusCreated] != created || cs.Counts[StatusFailed] != failed || cs.Done != 2 || cs.RetryPending != pending {
			t.Errorf("%s: %s %+v, want %s, %d created, %d failed, %d pending", step, st.RuntimeStatus, cs, status, created, failed, pending)
		}
		return st
	}
	done := check("before", RunCompleted, 1, 1, 0)
	if len(done.Output) != 2 || done.Output[1].Reason != `gave up after 2 attempts: invalid: the database rejected a value: check constraint "c" of table products (SQLSTATE 23514)` {
		t.Errorf("output = %+v", done.Output)
	}

	other, err := e.eng.Start(ctx, StartRequest{Trigger: "http", Entity: domain.EntityUser})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		id   string
		kind domain.Kind
	}{{other.InstanceID, domain.KindConflict}, {"realtime-20260101", domain.KindInvalid}, {"8235512345678a1b2c3d4e5", domain.KindNotFound}} {
		if _, err := e.eng.RetryFailed(ctx, c.id); !domain.IsKind(err, c.kind) {
			t.Errorf("retry of %s: %v, want %v", c.id, err, c.kind)
		}
	}
	drainPlans(t, e)
	drain(t, e.items, e.eng.SyncItem) // the other run (of users: it leaves product 3 alone)

	rs, err := e.eng.RetryFailed(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Round != 1 || rs.Items != 1 || rs.Resent || rs.Status.RuntimeStatus != RunRunning || rs.Status.CustomStatus.RetryPending != 1 {
		t.Errorf("round 1 = %+v", rs)
	}
	again, err := e.eng.RetryFailed(ctx, run)
	if err != nil || !again.Resent || again.Round != 1 || again.Items != 1 {
		t.Errorf("second request = %+v, %v; want round 1 resent", again, err)
	}
	check("round 1 sent", RunRunning, 1, 1, 1)
	var rounds []int
	if n := drain(t, e.items, func(ctx context.Context, m Message) error {
		rounds = append(rounds, m.Retry)
		return e.eng.SyncItem(ctx, m)
	}); n != 2 || fmt.Sprint(rounds) != "[1 1]" {
		t.Errorf("retry messages = %d of rounds %v, want 2 of round 1", n, rounds)
	}
	done = check("round 1 done", RunCompleted, 2, 0, 0)
	if done.CustomStatus.RetryRound != 1 || len(done.Output) != 2 || done.Output[1].Status != StatusCreated {
		t.Errorf("after round 1: %+v", done)
	}
	if _, err := e.eng.RetryFailed(ctx, run); !domain.IsKind(err, domain.KindConflict) {
		t.Errorf("retry with nothing failed: %v, want a conflict", err)
	}
	h, err := e.eng.Item(ctx, run, domain.EntityProduct, 3)
	if err != nil || h.Outcome == nil || h.Outcome.Status != StatusCreated || h.Outcome.Retry != 1 || h.Attempts != 2 || len(h.History) != 2 {
		t.Errorf("item 3 = %+v, %v", h, err)
	}
	if p, ok, err := e.fallback.LoadProduct(ctx, 3); err != nil || !ok || p.Name != "p3" {
		t.Errorf("product 3 in the fallback: %+v %v %v", p, ok, err)
	}
}
