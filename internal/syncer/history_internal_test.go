package syncer

import (
	"context"
	"testing"
	"time"

	"dualsync/internal/memdb"
	"dualsync/internal/store"
)

// TestHistoryRecord walks one database's history as the other records it,
// over memdb: marks recorded, a restore of it found once, the regression
// ended, and a restore of the other database (its record of this one then
// older than every mark this one keeps) found as no regression of this one.
func TestHistoryRecord(t *testing.T) {
	ctx := context.Background()
	ownData, otherData := memdb.New(store.RolePrimary), memdb.New(store.RoleFallback)
	own, other := ownData.Open(nil), otherData.Open(nil)
	for _, db := range []store.DB{own, other} {
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var found []store.Role
	h := newHistory(own, other, regPrimary, func(_ context.Context, r store.Role, _ time.Time) { found = append(found, r) }, time.Now)
	vouch := func(step string, want bool) {
		t.Helper()
		got, err := h.vouch(ctx)
		if err != nil || got != want {
			t.Fatalf("%s: vouch = %v, %v; want %v", step, got, err, want)
		}
	}
	vouch("first mark", false)
	backup := ownData.Snapshot()
	vouch("second mark", false)
	if len(found) != 0 {
		t.Fatalf("found %v before any restore", found)
	}

	ownData.Restore(backup)
	vouch("after the restore", true)
	vouch("again", true)
	if reg, err := h.check(ctx); err != nil || !reg {
		t.Fatalf("check after the restore: %v, %v", reg, err)
	}
	if len(found) != 1 || found[0] != store.RolePrimary || !h.distrusted() {
		t.Fatalf("found %v (distrusted %v); want the primary once", found, h.distrusted())
	}
	p, err := other.Peer(ctx, store.RolePrimary)
	if err != nil || !p.Regressed() {
		t.Fatalf("the fallback's record: %+v, %v", p, err)
	}
	if ok, err := h.clear(ctx, p.RegressedAt); err != nil || !ok || h.distrusted() {
		t.Fatalf("clear: %v, %v (distrusted %v)", ok, err, h.distrusted())
	}
	if reg, err := h.check(ctx); err != nil || reg {
		t.Fatalf("check after the repair: %v, %v", reg, err)
	}

	// The other database restored to a backup from before this one's
	// latest store.MarksKept marks: its record of this one is stale, not
	// evidence that this one lost anything.
	stale := otherData.Snapshot()
	for range store.MarksKept + 1 {
		vouch("many marks", false)
	}
	otherData.Restore(stale)
	if reg, err := h.check(ctx); err != nil || reg {
		t.Fatalf("check after the other's restore: %v, %v; want no regression of this one", reg, err)
	}
	if len(found) != 1 {
		t.Fatalf("found %v; want still the one restore", found)
	}
}
