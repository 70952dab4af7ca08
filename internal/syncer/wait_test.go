package syncer

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/testenv"
)

// A real-time item whose message spends the queue's retries during an
// outage still waits in the outbox: it is "waiting for the relay", not
// failed (no item_failed, not listed as failed), until it has waited
// OutboxStaleAfter; the next success replaces either record.
func TestRealtimePoisonedWaitsForRelay(t *testing.T) {
	type step struct {
		after    time.Duration // clock advance before the step
		heal     bool          // restore the primary and sync the item
		want     string        // the item's listed status afterwards
		failedEv int           // item_failed records so far
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"short outage heals", []step{
			{want: StatusWaiting},
			{after: 70 * time.Second, want: StatusWaiting},
			{after: 70 * time.Second, heal: true, want: StatusCreated},
		}},
		{"long outage fails once, then heals", []step{
			{want: StatusWaiting},
			{after: 3 * time.Minute, want: StatusWaiting},
			{after: 3 * time.Minute, want: StatusFailed, failedEv: 1},
			{after: time.Minute, want: StatusFailed, failedEv: 1}, // still failing: no second alert
			{after: time.Minute, heal: true, want: StatusCreated, failedEv: 1},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := &testenv.Logs{}
			now := time.Date(2030, 1, 2, 10, 0, 0, 0, time.UTC)
			e := newEnv(t, Options{Logger: logs.Logger(), Clock: func() time.Time { return now }, OutboxStaleAfter: 5 * time.Minute})
			ctx := context.Background()
			p, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr("during the outage"), Price: ptr(domain.Money(100))})
			if err != nil {
				t.Fatal(err)
			}
			m := Message{Entity: domain.EntityProduct, ID: p.ID}
			part := RealtimePartition(now)
			e.primaryProxy.Cut()
			var since string
			for i, s := range c.steps {
				now = now.Add(s.after)
				if s.heal {
					e.primaryProxy.Restore()
					if err := e.eng.SyncItem(ctx, m); err != nil {
						t.Fatalf("step %d: SyncItem after the outage: %v", i, err)
					}
				} else {
					if err := e.eng.SyncItem(ctx, m); err == nil {
						t.Fatalf("step %d: SyncItem succeeded with the primary cut", i)
					}
					if err := e.eng.ItemPoisoned(ctx, m); err != nil {
						t.Fatalf("step %d: ItemPoisoned: %v", i, err)
					}
				}
				h, err := e.eng.Item(ctx, part, domain.EntityProduct, p.ID)
				if err != nil || h.Outcome == nil {
					t.Fatalf("step %d: Item = %+v, %v", i, h, err)
				}
				if h.Outcome.Status != s.want {
					t.Fatalf("step %d: status %q (%s), want %q", i, h.Outcome.Status, h.Outcome.Reason, s.want)
				}
				events(t, logs, event.ItemFailed, s.failedEv)
				// Only failures still failed are listed (and counted) as failed.
				for _, st := range []string{StatusFailed, StatusWaiting} {
					page, err := e.eng.Results(ctx, part, st, 10, "")
					if err != nil {
						t.Fatal(err)
					}
					if got, want := len(page.Items), map[bool]int{true: 1}[st == s.want]; got != want {
						t.Errorf("step %d: %d items listed %s, want %d", i, got, st, want)
					}
				}
				if s.want != StatusWaiting {
					continue
				}
				var d waitDetail
				if err := json.Unmarshal(h.Outcome.Detail, &d); err != nil {
					t.Fatalf("step %d: detail %s: %v", i, h.Outcome.Detail, err)
				}
				if since == "" {
					since = d.WaitingSince
				}
				next := domain.FormatTime(now.Add(60 * time.Second))
				if d.WaitingSince != since || d.NextTryBy != next ||
					!strings.HasPrefix(h.Outcome.Reason, "waiting for the relay (next try by "+next+"): gave up after ") {
					t.Errorf("step %d: waiting since %s, next %s, reason %q; want since %s, next %s", i, d.WaitingSince, d.NextTryBy, h.Outcome.Reason, since, next)
				}
			}
		})
	}
}
