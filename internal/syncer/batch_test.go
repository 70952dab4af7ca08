package syncer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

func TestValidMessage(t *testing.T) {
	p := domain.EntityProduct
	many := make([]int64, MaxBatch+1)
	for i := range many {
		many[i] = int64(i + 1)
	}
	for _, c := range []struct {
		name string
		m    Message
		want string // "" = valid
	}{
		{"one item", Message{Entity: p, ID: 3}, ""},
		{"one item of a run", Message{Entity: p, ID: 3, Run: "r"}, ""},
		{"a batch", Message{Entity: domain.EntityUser, IDs: []int64{1, 2, 4}}, ""},
		{"a full batch", Message{Entity: p, IDs: many[:MaxBatch]}, ""},
		{"no entity", Message{ID: 3}, "entity"},
		{"unknown entity", Message{Entity: "order", ID: 3}, "entity"},
		{"no id", Message{Entity: p}, "positive id"},
		{"negative id", Message{Entity: p, ID: -1}, "positive id"},
		{"id and ids", Message{Entity: p, ID: 1, IDs: []int64{2}}, "both"},
		{"a batch in a run", Message{Entity: p, IDs: []int64{1, 2}, Run: "r"}, "one id"},
		{"too many ids", Message{Entity: p, IDs: many}, "at most"},
		{"a zero id in a batch", Message{Entity: p, IDs: []int64{1, 0}}, "positive ids"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := validMessage(c.m)
			switch {
			case c.want == "" && err != nil:
				t.Errorf("validMessage = %v, want valid", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("validMessage = %v, want an error about %q", err, c.want)
			}
		})
	}
}

// One message carrying several items merges each, records each outcome and
// acknowledges each item's outbox entries.
func TestSyncBatch(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var ids []int64
	for i := range 5 {
		p, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr(fmt.Sprint("b", i)), Price: ptr(domain.Money(100 + i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	// An item named twice is merged once.
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, IDs: append(ids, ids[0])}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := e.primary.GetProduct(ctx, id); err != nil {
			t.Errorf("primary lacks product %d: %v", id, err)
		}
	}
	if d, _ := e.fallback.OutboxDepth(ctx); d != 0 {
		t.Errorf("fallback outbox depth after the batch = %d, want 0", d)
	}
	rs, _, err := e.rec.Results(ctx, RealtimePartition(time.Now()), StatusCreated, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []int64
	for _, r := range rs {
		got = append(got, r.ID)
	}
	if !slices.Equal(got, ids) {
		t.Errorf("created results for %v, want %v", got, ids)
	}
	// Delivered again: nothing to do, nothing recorded over the outcomes.
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	if rs2, _, _ := e.rec.Results(ctx, RealtimePartition(time.Now()), StatusCreated, 100, ""); len(rs2) != len(ids) {
		t.Errorf("%d created results after a redelivery, want %d", len(rs2), len(ids))
	}
}

// A batch of products whose rows need different things: each is merged as
// its one-by-one merge would (copied either way, merged field by field,
// left alone), and every outbox entry it covers is acknowledged.
func TestSyncProductBatchMixed(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	a, err := e.primary.CreateProduct(ctx, domain.ProductChange{Name: ptr("a"), Price: ptr(domain.Money(1))})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr("b"), Price: ptr(domain.Money(2))})
	if err != nil {
		t.Fatal(err)
	}
	same := at(product(901, "same", t0, false), 1, 0)
	put(t, e.primary, same)
	put(t, e.fallback, same)
	put(t, e.primary, at(product(903, "from primary", t0.Add(time.Second), false), 2, 0)) // concurrent edits
	put(t, e.fallback, at(product(903, "from fallback", t0.Add(2*time.Second), false), 1, 1))
	tomb := at(product(905, "gone", t0.Add(time.Second), true), 0, 1) // a tombstone only the fallback has
	put(t, e.fallback, tomb)
	ids := []int64{a.ID, b.ID, 901, 903, 905, 907} // 907: in neither
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:5] {
		p, pok, perr := e.primary.LoadProduct(ctx, id)
		f, fok, ferr := e.fallback.LoadProduct(ctx, id)
		if perr != nil || ferr != nil || !pok || !fok || p.Ver != f.Ver || p.Name != f.Name || p.Deleted() != f.Deleted() {
			t.Errorf("product %d differs: primary %+v (%v), fallback %+v (%v)", id, p, pok, f, fok)
		}
	}
	for _, db := range []store.DB{e.primary, e.fallback} {
		if d, _ := db.OutboxDepth(ctx); d != 0 {
			t.Errorf("%s outbox depth %d after the batch, want 0", db.Role(), d)
		}
	}
	rs, _, err := e.rec.Results(ctx, RealtimePartition(time.Now()), "", 100, "")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int64]string{}
	for _, r := range rs {
		got[r.ID] = r.Status
	}
	want := map[int64]string{a.ID: StatusCreated, b.ID: StatusCreated, 903: StatusConflict, 905: StatusDeleted}
	if fmt.Sprint(got) != fmt.Sprint(want) { // maps print sorted by key
		t.Errorf("recorded %v, want %v (unchanged items are not recorded)", got, want)
	}
}

// An item that fails inside a batch is sent on alone, with the queue's
// retries of its own; the rest of the batch is merged and the message done.
func TestSyncBatchSendsAFailedItemOnAlone(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	ok1, err := e.primary.CreateUser(ctx, domain.UserChange{Name: ptr("Ok"), Email: ptr("ok1@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	clash, err := e.primary.CreateUser(ctx, domain.UserChange{Name: ptr("Ann"), Email: ptr("same@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.fallback.CreateUser(ctx, domain.UserChange{Name: ptr("Bob"), Email: ptr("same@example.com")}); err != nil {
		t.Fatal(err)
	}
	ok2, err := e.primary.CreateUser(ctx, domain.UserChange{Name: ptr("Ok"), Email: ptr("ok2@example.com")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityUser, IDs: []int64{ok1.ID, clash.ID, ok2.ID}}); err != nil {
		t.Fatalf("SyncItem = %v, want the batch done", err)
	}
	for _, id := range []int64{ok1.ID, ok2.ID} {
		if _, err := e.fallback.GetUser(ctx, id); err != nil {
			t.Errorf("fallback lacks user %d: %v", id, err)
		}
	}
	if _, err := e.fallback.GetUser(ctx, clash.ID); !domain.IsKind(err, domain.KindNotFound) {
		t.Errorf("the clashing user was copied: %v", err)
	}
	var sent []Message
	drain(t, e.items, func(_ context.Context, m Message) error { sent = append(sent, m); return nil })
	if want := []Message{{Entity: domain.EntityUser, ID: clash.ID}}; !slices.EqualFunc(sent, want, func(a, b Message) bool {
		return a.Entity == b.Entity && a.ID == b.ID && a.IDs == nil && a.Run == b.Run
	}) {
		t.Errorf("sent on %+v, want %+v", sent, want)
	}
	if d, _ := e.primary.OutboxDepth(ctx); d != 1 {
		t.Errorf("primary outbox depth = %d, want 1 (the clashing user's)", d)
	}
}

// When no item of a batch can be merged (here the primary is down) the
// message fails as a whole and comes back; nothing is sent on alone.
func TestSyncBatchFailsWholeWhenEveryItemFails(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	var ids []int64
	for i := range 3 {
		p, err := e.fallback.CreateProduct(ctx, domain.ProductChange{Name: ptr(fmt.Sprint("d", i)), Price: ptr(domain.Money(1))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, p.ID)
	}
	e.primaryProxy.Cut()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := e.eng.SyncItem(cctx, Message{Entity: domain.EntityProduct, IDs: ids}); !domain.IsKind(err, domain.KindUnavailable) {
		t.Fatalf("SyncItem with the primary down = %v, want unavailable", err)
	}
	if n := drain(t, e.items, func(context.Context, Message) error { return nil }); n != 0 {
		t.Errorf("%d messages sent on, want none", n)
	}
	if d, _ := e.fallback.OutboxDepth(ctx); d != 3 {
		t.Errorf("fallback outbox depth = %d, want 3 (nothing acknowledged)", d)
	}
}

// A batch that spent its retries is split: each item gets a message and
// retries of its own, and nothing is recorded failed.
func TestBatchPoisonedSplits(t *testing.T) {
	e := newEnv(t, Options{})
	ctx := context.Background()
	ids := []int64{3, 5, 8}
	if err := e.eng.ItemPoisoned(ctx, Message{Entity: domain.EntityProduct, IDs: ids}); err != nil {
		t.Fatal(err)
	}
	var got []int64
	drain(t, e.items, func(_ context.Context, m Message) error {
		if len(m.IDs) != 0 || m.Run != "" {
			t.Errorf("sent on %+v, want a single real-time item", m)
		}
		got = append(got, m.ID)
		return nil
	})
	slices.Sort(got)
	if !slices.Equal(got, ids) {
		t.Errorf("sent on %v, want %v", got, ids)
	}
	if rs, _, _ := e.rec.Results(ctx, RealtimePartition(time.Now()), StatusFailed, 10, ""); len(rs) != 0 {
		t.Errorf("failed results %+v, want none", rs)
	}
}
