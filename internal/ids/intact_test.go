package ids

import (
	"context"
	"errors"
	"testing"

	"dualsync/internal/memdb"
	"dualsync/internal/store"
)

// Check reads marks first: a database that holds the latest mark of its
// history the other recorded needs no MaxID (an index scan where the other
// parity is absent); one restored to before that mark does.
func TestCheckComparesIDsOnlyWhenTheHistoryIsNotIntact(t *testing.T) {
	ctx := context.Background()
	scanned := errors.New("MaxID called")
	noScan := func(op string) error {
		if op == "MaxID" {
			return scanned
		}
		return nil
	}
	own, other := memdb.New(store.RoleFallback), memdb.New(store.RolePrimary)
	odb, pdb := own.Open(nil), other.Open(nil)
	for _, db := range []store.DB{odb, pdb} {
		if err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := own.Snapshot()
	m, err := odb.AddMark(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		prepare func()
		want    error
	}{
		{"no mark recorded yet", func() {}, scanned},
		{"the latest mark held", func() {
			if ok, err := pdb.SetPeer(ctx, store.RoleFallback, store.Peer{}, store.Peer{Seen: m}); !ok || err != nil {
				t.Fatal(ok, err)
			}
		}, nil},
		{"restored to before it", func() { own.Restore(before) }, scanned},
	}
	for _, tt := range tests {
		tt.prepare()
		own.SetFaults(noScan, nil)
		other.SetFaults(noScan, nil)
		if err := Check(ctx, odb, pdb); !errors.Is(err, tt.want) {
			t.Errorf("%s: Check = %v, want %v", tt.name, err, tt.want)
		}
	}
}
