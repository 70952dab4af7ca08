package storetest

import (
	"math"
	"slices"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// testPurgeTombstones: only tombstones deleted before the horizon, holding
// the vector the caller read and with no outbox entry are purged; a live
// row, a changed row (a sync write between the check and the purge) and an
// item whose change still waits in the outbox stay.
func testPurgeTombstones(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	past := domain.Millis(time.Now().Add(-time.Hour))
	later := domain.Millis(time.Now().Add(time.Hour))

	var ps []domain.Product
	for _, n := range []string{"live", "acked", "waiting", "changed", "acked2"} {
		ps = append(ps, must[domain.Product](t, "create")(db.CreateProduct(c, productChange(n, "", 100))))
	}
	live, acked, waiting, changed, acked2 := ps[0], ps[1], ps[2], ps[3], ps[4]
	for _, p := range ps[1:] {
		if err := db.DeleteProduct(c, p.ID); err != nil {
			t.Fatal(err)
		}
	}
	// Sync acknowledged every change but the waiting tombstone's delete.
	var marks []store.OutboxMark
	for _, p := range ps {
		if p.ID != waiting.ID {
			marks = append(marks, store.OutboxMark{ID: p.ID, UpTo: math.MaxInt64})
		}
	}
	if err := db.AckOutbox(c, domain.EntityProduct, marks); err != nil {
		t.Fatal(err)
	}
	if got := must[[]store.Tombstone](t, "candidates")(db.PurgeCandidates(c, domain.EntityProduct, 0, past, 10)); len(got) != 0 {
		t.Fatalf("candidates deleted before an hour ago = %+v, want none", got)
	}
	cands := must[[]store.Tombstone](t, "candidates")(db.PurgeCandidates(c, domain.EntityProduct, 0, later, 10))
	var ids []int64
	for _, x := range cands {
		ids = append(ids, x.ID)
		tomb, ok, _ := db.LoadProduct(c, x.ID)
		if !ok || tomb.Ver != x.Ver {
			t.Errorf("candidate %+v: the row holds %v", x, tomb.Ver)
		}
	}
	if want := []int64{acked.ID, changed.ID, acked2.ID}; !slices.Equal(ids, want) {
		t.Fatalf("candidates = %v, want %v (no live row, none waiting in the outbox)", ids, want)
	}
	if got := must[[]store.Tombstone](t, "candidates")(db.PurgeCandidates(c, domain.EntityProduct, acked.ID, later, 1)); len(got) != 1 || got[0].ID != changed.ID {
		t.Fatalf("candidates after %d, limit 1 = %+v", acked.ID, got)
	}

	// A sync write changes one candidate after it was listed.
	cur, _, _ := db.LoadProduct(c, changed.ID)
	next := cur
	next.Ver.F++
	must[store.PutResult](t, "put")(db.PutProduct(c, next, &cur.Ver))

	liveRow, _, _ := db.LoadProduct(c, live.ID)
	waitRow, _, _ := db.LoadProduct(c, waiting.ID)
	all := append(cands, store.Tombstone{ID: live.ID, Ver: liveRow.Ver}, store.Tombstone{ID: waiting.ID, Ver: waitRow.Ver})
	if got := must[[]int64](t, "purge")(db.PurgeTombstones(c, domain.EntityProduct, all, past)); len(got) != 0 {
		t.Fatalf("purge with a horizon before the deletes removed %v", got)
	}
	got := must[[]int64](t, "purge")(db.PurgeTombstones(c, domain.EntityProduct, all, later))
	if want := []int64{acked.ID, acked2.ID}; !slices.Equal(got, want) {
		t.Fatalf("purged %v, want %v", got, want)
	}
	for _, p := range ps {
		_, ok, err := db.LoadProduct(c, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if gone := p.ID == acked.ID || p.ID == acked2.ID; ok == gone {
			t.Errorf("product %d (%s): present %v after the purge", p.ID, p.Name, ok)
		}
	}
	if got := must[[]int64](t, "purge again")(db.PurgeTombstones(c, domain.EntityProduct, all, later)); len(got) != 0 {
		t.Errorf("a second purge removed %v", got)
	}
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 2 {
		t.Errorf("outbox depth %d, want the waiting item's two entries (create, delete)", n)
	}

	// Users: the same conditions.
	u := must[domain.User](t, "create user")(db.CreateUser(c, userChange("u", "u@example.com")))
	keep := must[domain.User](t, "create user")(db.CreateUser(c, userChange("k", "k@example.com")))
	for _, x := range []domain.User{u, keep} {
		if err := db.DeleteUser(c, x.ID); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.AckOutbox(c, domain.EntityUser, []store.OutboxMark{{ID: u.ID, UpTo: math.MaxInt64}}); err != nil {
		t.Fatal(err)
	}
	uc := must[[]store.Tombstone](t, "user candidates")(db.PurgeCandidates(c, domain.EntityUser, 0, later, 10))
	if len(uc) != 1 || uc[0].ID != u.ID {
		t.Fatalf("user candidates = %+v, want %d only", uc, u.ID)
	}
	kt, _, _ := db.LoadUser(c, keep.ID)
	if got := must[[]int64](t, "purge users")(db.PurgeTombstones(c, domain.EntityUser, append(uc, store.Tombstone{ID: keep.ID, Ver: kt.Ver}), later)); !slices.Equal(got, []int64{u.ID}) {
		t.Fatalf("purged users %v, want [%d]", got, u.ID)
	}
	if _, ok, _ := db.LoadUser(c, u.ID); ok {
		t.Errorf("user %d still there", u.ID)
	}
	// The email of a purged tombstone is free, as it was.
	must[domain.User](t, "reuse email")(db.CreateUser(c, userChange("u2", "u@example.com")))
	if _, err := db.PurgeCandidates(c, domain.Entity("order"), 0, later, 10); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("candidates of an unknown entity: %v, want Invalid", err)
	}
}
