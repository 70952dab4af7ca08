package storetest

import (
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// testBatchesAllOrNothing: a batch write that fails writes nothing, in both
// adapters alike. A batch naming an id twice is Invalid before anything is
// written; a batch one of whose rows the database rejects (a name too long
// for its column, a price beyond its precision) is Invalid, and the other
// rows of the batch, inserts and updates, are not written either.
func testBatchesAllOrNothing(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	t0 := time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)
	row := func(id int64, name string, price domain.Money, ver domain.Vector) domain.Product {
		return domain.Product{ID: id, Name: name, Price: price, CreatedAt: t0, UpdatedAt: t0, Ver: ver, NameAt: t0, DescriptionAt: t0, PriceAt: t0}
	}
	old := domain.Vector{F: 1}
	existing := row(401, "old", 1, old)
	must[store.PutResult](t, "put")(db.PutProduct(c, existing, nil))
	unchanged := func(what string) {
		t.Helper()
		got := must[map[int64]domain.Product](t, "load")(db.LoadProducts(c, []int64{401, 403, 405, 407}))
		if len(got) != 1 || !productSynced(got[401], existing) {
			t.Fatalf("%s: the failed batch wrote something: %+v", what, got)
		}
	}
	update := store.ProductPut{Product: row(401, "new", 2, domain.Vector{P: 1, F: 1}), Expect: &old}
	tests := []struct {
		name string
		puts []store.ProductPut
	}{
		{"an id twice", []store.ProductPut{update, {Product: row(403, "a", 1, old)}, {Product: row(403, "b", 1, old)}}},
		{"an id twice, both updates", []store.ProductPut{update, update}},
		{"a name too long for its column", []store.ProductPut{update, {Product: row(403, "a", 1, old)}, {Product: row(405, strings.Repeat("n", 256), 1, old)}}},
		{"a price beyond the column's precision", []store.ProductPut{{Product: row(407, "p", domain.Money(100_000_000_00), old)}, update, {Product: row(403, "a", 1, old)}}},
	}
	for _, tc := range tests {
		_, err := db.PutProducts(c, tc.puts)
		wantKind(t, "PutProducts with "+tc.name, err, domain.KindInvalid)
		unchanged(tc.name)
	}
	// The same batch without the bad row is written whole.
	res := must[[]store.PutResult](t, "put products")(db.PutProducts(c, []store.ProductPut{update, {Product: row(403, "a", 1, old)}}))
	if len(res) != 2 || res[0] != store.PutUpdated || res[1] != store.PutCreated {
		t.Fatalf("good batch: %v", res)
	}

	u := domain.User{ID: 501, Name: "u", Email: "u@example.com", CreatedAt: t0, UpdatedAt: t0, NameAt: t0, EmailAt: t0, Ver: old}
	must[store.PutResult](t, "put user")(db.PutUser(c, u, nil))
	moved := u
	moved.Email, moved.Ver = "moved@example.com", domain.Vector{P: 1, F: 1}
	other := domain.User{ID: 503, Name: "o", Email: "o@example.com", CreatedAt: t0, UpdatedAt: t0, NameAt: t0, EmailAt: t0, Ver: old}
	for _, puts := range [][]store.UserPut{
		{{User: moved, Expect: &old}, {User: other}, {User: other}},
		{{User: moved, Expect: &old}, {User: moved, Expect: &old}},
	} {
		_, err := db.PutUsers(c, puts)
		wantKind(t, "PutUsers with an id twice", err, domain.KindInvalid)
		got, _, _ := db.LoadUser(c, 501)
		if _, ok, _ := db.LoadUser(c, 503); ok || got.Email != u.Email || got.Ver != old {
			t.Fatalf("a refused PutUsers wrote something: 501 = %+v, 503 present %v", got, ok)
		}
	}
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 0 {
		t.Fatalf("sync writes wrote %d outbox rows", n)
	}
}
