package storetest

import (
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// testRanges pins ProductsInRange and UsersInRange: the bounds are
// (after, upTo], tombstones are included, rows come back by id, and every
// row is exactly what the single-row load returns (vector and field times
// included), since diff runs compare what they read as the merge would.
func testRanges(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	t0 := time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)
	del := t0.Add(time.Minute)
	for _, id := range []int64{3, 4, 7, 10, 11} {
		p := domain.Product{ID: id, Name: "p", Description: "d", Price: domain.Money(id * 101), CreatedAt: t0, UpdatedAt: t0,
			Ver: domain.Vector{P: id, F: 2}, NameAt: t0, DescriptionAt: t0.Add(time.Millisecond), PriceAt: t0.Add(2 * time.Millisecond)}
		if id == 7 {
			p.DeletedAt = &del
		}
		must[store.PutResult](t, "put product")(db.PutProduct(c, p, nil))
		u := domain.User{ID: id, Name: "u", Email: "u" + string(rune('a'+id)) + "@example.com", CreatedAt: t0, UpdatedAt: t0,
			Ver: domain.Vector{P: 1, F: id}, NameAt: t0, EmailAt: t0}
		if id == 10 {
			u.DeletedAt = &del
		}
		must[store.PutResult](t, "put user")(db.PutUser(c, u, nil))
	}
	tests := []struct {
		after, upTo int64
		want        []int64
	}{
		{0, 100, []int64{3, 4, 7, 10, 11}},
		{3, 10, []int64{4, 7, 10}}, // after excluded, upTo included
		{4, 6, nil},
		{11, 20, nil},
		{2, 3, []int64{3}},
	}
	for _, tc := range tests {
		ps := must[[]domain.Product](t, "products in range")(db.ProductsInRange(c, tc.after, tc.upTo))
		us := must[[]domain.User](t, "users in range")(db.UsersInRange(c, tc.after, tc.upTo))
		if len(ps) != len(tc.want) || len(us) != len(tc.want) {
			t.Fatalf("range (%d, %d]: %d products, %d users, want ids %v", tc.after, tc.upTo, len(ps), len(us), tc.want)
		}
		for i, id := range tc.want {
			if ps[i].ID != id || us[i].ID != id {
				t.Errorf("range (%d, %d] row %d: product %d, user %d, want %d", tc.after, tc.upTo, i, ps[i].ID, us[i].ID, id)
			}
			if lp, ok, err := db.LoadProduct(c, id); err != nil || !ok || !productSynced(ps[i], lp) {
				t.Errorf("product %d in range = %+v, load = %+v (%v)", id, ps[i], lp, err)
			}
			if lu, ok, err := db.LoadUser(c, id); err != nil || !ok || !userEqual(us[i], lu) || us[i].Ver != lu.Ver ||
				!us[i].NameAt.Equal(lu.NameAt) || !us[i].EmailAt.Equal(lu.EmailAt) {
				t.Errorf("user %d in range = %+v, load = %+v (%v)", id, us[i], lu, err)
			}
		}
	}
	ps := must[[]domain.Product](t, "products")(db.ProductsInRange(c, 0, 100))
	if ps[2].DeletedAt == nil || !ps[2].DeletedAt.Equal(del) || ps[1].Ver != (domain.Vector{P: 4, F: 2}) || ps[1].Price != 404 {
		t.Errorf("tombstone or vector lost: %+v %+v", ps[1], ps[2])
	}
	checkTime(t, "range priceAt", ps[0].PriceAt)
}
