package syncer

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

func TestBoundaries(t *testing.T) {
	tests := []struct {
		ids  []int64
		size int
		want []int64
	}{
		{nil, 3, nil},
		{[]int64{5}, 3, []int64{5}},
		{[]int64{1, 2, 3}, 3, []int64{3}},
		{[]int64{1, 2, 3, 4}, 3, []int64{3, 4}},
		{[]int64{2, 4, 6, 8, 10, 12}, 2, []int64{4, 8, 12}},
	}
	for _, tc := range tests {
		if got := boundaries(tc.ids, tc.size); !slices.Equal(got, tc.want) {
			t.Errorf("boundaries(%v, %d) = %v, want %v", tc.ids, tc.size, got, tc.want)
		}
	}
}

// The report's field list must agree with the merge's idea of "same": a
// column the merge compares but the report forgot would give a differing
// item with no field named, and the other way round.
func TestRangerFieldsAgreeWithSame(t *testing.T) {
	later := t0.Add(time.Second)
	base := at(product(1, "a", t0, false), 2, 1)
	base.Description = "d"
	mutations := map[string]func(*domain.Product){
		"name":          func(p *domain.Product) { p.Name = "b" },
		"description":   func(p *domain.Product) { p.Description = "e" },
		"price":         func(p *domain.Product) { p.Price++ },
		"createdAt":     func(p *domain.Product) { p.CreatedAt = later },
		"updatedAt":     func(p *domain.Product) { p.UpdatedAt = later },
		"deletedAt":     func(p *domain.Product) { p.DeletedAt = &later },
		"nameAt":        func(p *domain.Product) { p.NameAt = later },
		"descriptionAt": func(p *domain.Product) { p.DescriptionAt = later },
		"priceAt":       func(p *domain.Product) { p.PriceAt = later },
	}
	if f := productKind.differ(base, base); len(f) != 0 || !productKind.same(base, base) {
		t.Fatalf("identical rows: fields %v", f)
	}
	for name, mutate := range mutations {
		p := base
		mutate(&p)
		if productKind.same(base, p) {
			t.Errorf("%s: the merge calls the rows the same", name)
		}
		if f := productKind.differ(base, p); !slices.Equal(f, []string{name}) {
			t.Errorf("%s changed: fields %v", name, f)
		}
	}
	u := domain.User{ID: 2, Name: "n", Email: "e@example.com", CreatedAt: t0, UpdatedAt: t0, NameAt: t0, EmailAt: t0}
	userMutations := map[string]func(*domain.User){
		"name":      func(x *domain.User) { x.Name = "m" },
		"email":     func(x *domain.User) { x.Email = "f@example.com" },
		"createdAt": func(x *domain.User) { x.CreatedAt = later },
		"updatedAt": func(x *domain.User) { x.UpdatedAt = later },
		"deletedAt": func(x *domain.User) { x.DeletedAt = &later },
		"nameAt":    func(x *domain.User) { x.NameAt = later },
		"emailAt":   func(x *domain.User) { x.EmailAt = later },
	}
	for name, mutate := range userMutations {
		x := u
		mutate(&x)
		if userKind.same(u, x) || !slices.Equal(userKind.differ(u, x), []string{name}) {
			t.Errorf("user %s changed: same %v, fields %v", name, userKind.same(u, x), userKind.differ(u, x))
		}
	}
	// What a report says differs.
	deleted := base
	deleted.DeletedAt, deleted.Ver = &later, domain.Vector{P: 3, F: 1}
	for _, tc := range []struct {
		name string
		p, f *domain.Product
		want []string
	}{
		{"missing on the fallback", &base, nil, []string{"missing_fallback"}},
		{"missing on the primary", nil, &base, []string{"missing_primary"}},
		{"deleted on one side", &base, &deleted, []string{"vector", "tombstone"}},
		{"changed by SQL, same vector", &base, ptr(func() domain.Product { p := base; p.Price = 5; return p }()), []string{"content"}},
	} {
		if got := diffRows(productRanger, tc.p, tc.f).differences; !slices.Equal(got, tc.want) {
			t.Errorf("%s: differences %v, want %v", tc.name, got, tc.want)
		}
	}
}

// driftFixture fills both databases with identical products and five that
// differ each in its own way; it returns the number of products in either.
func driftFixture(t *testing.T, e *env) (total int) {
	t.Helper()
	later := t0.Add(time.Second)
	for id := int64(1); id <= 59; id += 2 { // 30 identical
		p := at(product(id, fmt.Sprint("p", id), t0, false), 1, 0)
		put(t, e.primary, p)
		put(t, e.fallback, p)
	}
	same := at(product(61, "before", t0, false), 1, 0)
	put(t, e.fallback, same)
	behind := same
	behind.Name = "changed by SQL" // same vector: no API write saw it
	put(t, e.primary, behind)
	put(t, e.primary, at(product(63, "primary only", t0, false), 1, 0))
	put(t, e.fallback, at(product(64, "fallback only", t0, false), 0, 1))
	put(t, e.primary, at(product(65, "old", t0, false), 1, 0))
	put(t, e.fallback, at(product(65, "new", later, false), 1, 1))
	put(t, e.fallback, at(product(67, "x", t0, false), 1, 0))
	put(t, e.primary, at(product(67, "x", later, true), 2, 0))
	return 35
}

// runRange drains the planner queue (pages and ranges) and the item queue
// until both stay empty, and returns how many item messages there were.
func runDiff(t *testing.T, e *env) (items int) {
	t.Helper()
	for {
		n := drainPlans(t, e)
		m := drain(t, e.items, e.eng.SyncItem)
		items += m
		if n == 0 && m == 0 {
			return items
		}
	}
}

func rowsOf(t *testing.T, db store.DB) string {
	t.Helper()
	ps, err := db.ProductsInRange(context.Background(), 0, 1<<62)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ps)
	return string(b)
}

func TestDiffRunSyncsOnlyWhatDiffers(t *testing.T) {
	e := newEnv(t, Options{RangeSize: 4, RangesPerPage: 3}) // several ranges and pages
	ctx := context.Background()
	total := driftFixture(t, e)
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http", Mode: ModeDiff})
	if err != nil {
		t.Fatal(err)
	}
	if st.CustomStatus.Mode != ModeDiff {
		t.Errorf("mode %q", st.CustomStatus.Mode)
	}
	if n := runDiff(t, e); n != 5 {
		t.Errorf("item messages %d, want 5 (one per differing product)", n)
	}
	done, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{StatusCreated: 2, StatusUpdated: 1, StatusDeleted: 1, StatusUnchanged: 30, StatusConflict: 1, StatusFailed: 0}
	if done.RuntimeStatus != RunCompleted || done.CustomStatus.Total != int64(total) || done.CustomStatus.Done != int64(total) ||
		fmt.Sprint(done.CustomStatus.Counts) != fmt.Sprint(want) || done.CustomStatus.Mode != ModeDiff {
		t.Fatalf("status %s %+v, want Completed, total %d, counts %v", done.RuntimeStatus, done.CustomStatus, total, want)
	}
	// The output lists the synced items only, and is not truncated.
	var ids []int64
	for _, o := range done.Output {
		ids = append(ids, o.ID)
	}
	if !slices.Equal(ids, []int64{61, 63, 64, 65, 67}) || done.CustomStatus.OutputTruncated {
		t.Errorf("output %v (truncated %v)", done.Output, done.CustomStatus.OutputTruncated)
	}
	if rowsOf(t, e.primary) != rowsOf(t, e.fallback) {
		t.Error("the databases differ after the diff run")
	}
	// A second diff run finds nothing to do and sends no item message.
	st2, err := e.eng.Start(ctx, StartRequest{Trigger: "http", Mode: ModeDiff})
	if err != nil {
		t.Fatal(err)
	}
	if n := runDiff(t, e); n != 0 {
		t.Errorf("second run: %d item messages, want 0", n)
	}
	again, err := e.eng.Status(ctx, st2.InstanceID)
	if err != nil || again.RuntimeStatus != RunCompleted || again.CustomStatus.Counts[StatusUnchanged] != int64(total) || len(again.Output) != 0 {
		t.Fatalf("second run: %+v %v", again, err)
	}
}

// A range message that dies after recording its range, before handing on
// its items, is redelivered: the items are sent then, and nothing is counted
// twice; a further duplicate of the message changes nothing.
func TestDiffRangeCrashRedeliveredCountsOnce(t *testing.T) {
	crashes := 0
	e := newEnv(t, Options{RangeSize: 8, CrashPoint: func(point string, d Delivery) {
		if point == CrashAfterRangeRecorded && d.DequeueCount == 1 {
			crashes++
			panic("crash")
		}
	}})
	ctx := context.Background()
	total := driftFixture(t, e)
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http", Mode: ModeDiff})
	if err != nil {
		t.Fatal(err)
	}
	plan := func(m PlanMessage, d Delivery) (crashed bool) {
		defer func() {
			if r := recover(); r != nil {
				crashed = true
			}
		}()
		if err := e.eng.Plan(ctx, m, d); err != nil {
			t.Fatalf("plan %+v: %v", m, err)
		}
		return false
	}
	var ranges []delivered[PlanMessage]
	for {
		msgs := receive[PlanMessage](t, e.plans)
		if len(msgs) == 0 {
			break
		}
		for _, msg := range msgs {
			if msg.m.UpTo > 0 {
				ranges = append(ranges, msg)
			}
			if plan(msg.m, msg.d) {
				redelivered := msg.d
				redelivered.DequeueCount++
				if plan(msg.m, redelivered) {
					t.Fatal("the redelivery crashed")
				}
			}
			deleteDelivered(t, e.plans, msg)
		}
	}
	if crashes != len(ranges) || crashes < 4 {
		t.Fatalf("%d crashes for %d ranges", crashes, len(ranges))
	}
	// Exactly one message per differing item: the crashed attempts sent none.
	if n := drain(t, e.items, e.eng.SyncItem); n != 5 {
		t.Errorf("item messages %d, want 5", n)
	}
	// Every range delivered once more (a duplicate): nothing changes.
	for _, r := range ranges {
		d := r.d
		d.DequeueCount = 3
		if plan(r.m, d) {
			t.Fatal("a duplicate crashed")
		}
	}
	if n := len(receive[Message](t, e.items)); n != 0 {
		t.Errorf("duplicates sent %d item messages", n)
	}
	done, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	if done.RuntimeStatus != RunCompleted || done.CustomStatus.Total != int64(total) || done.CustomStatus.Done != int64(total) ||
		done.CustomStatus.Counts[StatusUnchanged] != 30 {
		t.Fatalf("status %s %+v, want Completed with %d items, 30 unchanged", done.RuntimeStatus, done.CustomStatus, total)
	}
}

func TestVerifyRunReportsAndChangesNothing(t *testing.T) {
	e := newEnv(t, Options{RangeSize: 5})
	ctx := context.Background()
	total := driftFixture(t, e)
	beforeP, beforeF := rowsOf(t, e.primary), rowsOf(t, e.fallback)
	st, err := e.eng.Start(ctx, StartRequest{Trigger: "http", Mode: ModeVerify})
	if err != nil {
		t.Fatal(err)
	}
	if n := runDiff(t, e); n != 0 {
		t.Errorf("verify sent %d item messages", n)
	}
	if rowsOf(t, e.primary) != beforeP || rowsOf(t, e.fallback) != beforeF {
		t.Fatal("verify changed a database")
	}
	for _, db := range []store.DB{e.primary, e.fallback} {
		if n, err := db.OutboxDepth(ctx); err != nil || n != 0 {
			t.Errorf("%s outbox %d %v", db.Role(), n, err)
		}
	}
	done, err := e.eng.Status(ctx, st.InstanceID)
	if err != nil {
		t.Fatal(err)
	}
	cs := done.CustomStatus
	if done.RuntimeStatus != RunCompleted || cs.Total != int64(total) || cs.Counts[StatusDiffers] != 5 || cs.Differs == nil || *cs.Differs != 5 ||
		cs.Counts[StatusUnchanged] != 30 || cs.Mode != ModeVerify {
		t.Fatalf("status %s %+v", done.RuntimeStatus, cs)
	}
	page, err := e.eng.Results(ctx, st.InstanceID, StatusDiffers, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int64][]string{61: {"content"}, 63: {"missing_fallback"}, 64: {"missing_primary"}, 65: {"vector", "content"}, 67: {"vector", "tombstone", "content"}}
	if len(page.Items) != len(want) {
		t.Fatalf("results %+v", page.Items)
	}
	for _, it := range page.Items {
		var d struct {
			Primary, Fallback map[string]any
			Differences       []string
			Fields            []string
		}
		if err := json.Unmarshal(it.Detail, &d); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(d.Differences, want[it.ID]) {
			t.Errorf("item %d: differences %v, want %v", it.ID, d.Differences, want[it.ID])
		}
		if (d.Primary == nil) != (it.ID == 64) || (d.Fallback == nil) != (it.ID == 63) {
			t.Errorf("item %d: rows %v / %v", it.ID, d.Primary, d.Fallback)
		}
		if it.ID == 61 && (!slices.Equal(d.Fields, []string{"name"}) || d.Primary["name"] != "changed by SQL" || d.Fallback["name"] != "before") {
			t.Errorf("item 61: %+v", d)
		}
	}
	// A full run's counts have no differs key: their shape is unchanged.
	full, err := e.eng.Start(ctx, StartRequest{Trigger: "http"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := full.CustomStatus.Counts[StatusDiffers]; ok || full.CustomStatus.Mode != ModeFull || full.CustomStatus.Differs != nil {
		t.Errorf("full run status %+v", full.CustomStatus)
	}
}
