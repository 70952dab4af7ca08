// Package storetest is the one contract suite every store.DB adapter must
// pass. Adapters' tests call Run with a function opening their database.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/sample"
	"dualsync/internal/store"
)

// Opener returns a DB in the given role on a fresh, empty database (no
// schema); the suite migrates it. It closes the DB when the test ends.
type Opener func(t *testing.T, role store.Role) store.DB

// Run runs the contract suite; each subtest gets its own database.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Migrate", testMigrate},
		{"ProductCRUD", testProductCRUD},
		{"UserCRUD", testUserCRUD},
		{"ListPaging", testListPaging},
		{"IDParityAndSequence", testIDParity},
		{"SequenceAtMigrate", testSequenceAtMigrate},
		{"MaxIDAndAdvance", testMaxIDAndAdvance},
		{"SequenceRestartValue", testSequenceRestart},
		{"Versions", testVersions},
		{"Jumps", testJumps},
		{"PutUsersSwap", testPutUsersSwap},
		{"EmailKey", testEmailKey},
		{"NextVersionMonotonic", testNextVersion},
		{"Outbox", testOutbox},
		{"PutProduct", testPutProduct},
		{"PutProducts", testPutProducts},
		{"BatchesAllOrNothing", testBatchesAllOrNothing},
		{"PutUser", testPutUser},
		{"EmailUniqueness", testEmailUniqueness},
		{"IDs", testIDs},
		{"Seed", testSeed},
		{"Money", testMoney},
		{"Times", testTimes},
		{"PurgeTombstones", testPurgeTombstones},
		{"Ranges", testRanges},
		{"Marks", testMarks},
		{"Peer", testPeer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// migrated opens a DB in role and migrates it.
func migrated(t *testing.T, open Opener, role store.Role) store.DB {
	t.Helper()
	db := open(t, role)
	if err := db.Migrate(ctx(t)); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func must[T any](t *testing.T, what string) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}

func wantKind(t *testing.T, what string, err error, k domain.Kind) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error, want %s", what, k)
	}
	if got := domain.ErrorKind(err); got != k {
		t.Fatalf("%s: error kind %s, want %s (%v)", what, got, k, err)
	}
}

func ptr[T any](v T) *T { return &v }

func productChange(name, desc string, price domain.Money) domain.ProductChange {
	return domain.ProductChange{Name: &name, Description: &desc, Price: &price}
}

func userChange(name, email string) domain.UserChange {
	return domain.UserChange{Name: &name, Email: &email}
}

func checkTime(t *testing.T, what string, tm time.Time) {
	t.Helper()
	if tm.IsZero() {
		t.Fatalf("%s is zero", what)
	}
	if tm.Location() != time.UTC {
		t.Fatalf("%s = %v is not in UTC", what, tm)
	}
	if tm.Nanosecond()%int(time.Millisecond) != 0 {
		t.Fatalf("%s = %v is not truncated to milliseconds", what, tm)
	}
}

func wantParity(t *testing.T, role store.Role, id int64) {
	t.Helper()
	want := int64(1)
	if role == store.RoleFallback {
		want = 0
	}
	if id <= 0 || id%2 != want {
		t.Fatalf("id %d has the wrong parity for the %s", id, role)
	}
}

var roles = []store.Role{store.RolePrimary, store.RoleFallback}

func testMigrate(t *testing.T, open Opener) {
	db := open(t, store.RolePrimary)
	c := ctx(t)
	if db.Role() != store.RolePrimary {
		t.Fatalf("Role() = %q", db.Role())
	}
	if d := db.Driver(); d != "postgres" && d != "sqlserver" {
		t.Fatalf("Driver() = %q", d)
	}
	if err := db.Ping(c); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	// Concurrent first runs (several instances starting at once), then again.
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = db.Migrate(c) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent Migrate %d: %v", i, err)
		}
	}
	p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("A", "", 100)))
	if err := db.Migrate(c); err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	// Re-running must not reset the sequence or touch data.
	q := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("B", "", 100)))
	if q.ID != p.ID+2 {
		t.Fatalf("after re-migrating, next id = %d, want %d", q.ID, p.ID+2)
	}
	if _, err := db.GetProduct(c, p.ID); err != nil {
		t.Fatalf("product lost after re-migrating: %v", err)
	}
}

func testProductCRUD(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("Laptop", "Fast", 1299_99)))
			wantParity(t, role, p.ID)
			if p.Name != "Laptop" || p.Description != "Fast" || p.Price != 1299_99 || p.DeletedAt != nil {
				t.Fatalf("created %+v", p)
			}
			checkTime(t, "CreatedAt", p.CreatedAt)
			if !p.CreatedAt.Equal(p.UpdatedAt) {
				t.Fatalf("new product: createdAt %v != updatedAt %v", p.CreatedAt, p.UpdatedAt)
			}
			got := must[domain.Product](t, "get")(db.GetProduct(c, p.ID))
			if !productEqual(got, p) {
				t.Fatalf("get = %+v, want %+v", got, p)
			}

			// A patch changes only its fields; createdAt stays.
			u := must[domain.Product](t, "update")(db.UpdateProduct(c, p.ID, domain.ProductChange{Price: ptr(domain.Money(999_99))}))
			if u.Name != "Laptop" || u.Description != "Fast" || u.Price != 999_99 || !u.CreatedAt.Equal(p.CreatedAt) || !u.UpdatedAt.After(p.UpdatedAt) {
				t.Fatalf("updated %+v from %+v", u, p)
			}
			checkTime(t, "UpdatedAt", u.UpdatedAt)
			got = must[domain.Product](t, "get")(db.GetProduct(c, p.ID))
			if !productEqual(got, u) {
				t.Fatalf("get after update = %+v, want %+v", got, u)
			}

			if err := db.DeleteProduct(c, p.ID); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err := db.GetProduct(c, p.ID)
			wantKind(t, "get tombstone", err, domain.KindNotFound)
			_, err = db.UpdateProduct(c, p.ID, productChange("X", "", 1))
			wantKind(t, "update tombstone", err, domain.KindNotFound)
			wantKind(t, "delete tombstone", db.DeleteProduct(c, p.ID), domain.KindNotFound)
			list := must[[]domain.Product](t, "list")(db.ListProducts(c, store.Page{}))
			if len(list) != 0 {
				t.Fatalf("list shows tombstones: %+v", list)
			}

			// Sync still sees the tombstone, with deletedAt == updatedAt.
			tomb, ok, err := db.LoadProduct(c, p.ID)
			if err != nil || !ok {
				t.Fatalf("load tombstone: ok=%v err=%v", ok, err)
			}
			if tomb.DeletedAt == nil || !tomb.DeletedAt.Equal(tomb.UpdatedAt) || !tomb.UpdatedAt.After(u.UpdatedAt) || tomb.Name != "Laptop" {
				t.Fatalf("tombstone %+v", tomb)
			}
			checkTime(t, "DeletedAt", *tomb.DeletedAt)

			for _, id := range []int64{p.ID + 1000, 0, -1} {
				_, err = db.GetProduct(c, id)
				wantKind(t, "get missing", err, domain.KindNotFound)
				_, err = db.UpdateProduct(c, id, productChange("X", "", 1))
				wantKind(t, "update missing", err, domain.KindNotFound)
				wantKind(t, "delete missing", db.DeleteProduct(c, id), domain.KindNotFound)
				if _, ok, err := db.LoadProduct(c, id); ok || err != nil {
					t.Fatalf("load missing %d: ok=%v err=%v", id, ok, err)
				}
			}
		})
	}
}

func testUserCRUD(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			u := must[domain.User](t, "create")(db.CreateUser(c, userChange("Ann", "ann@example.com")))
			wantParity(t, role, u.ID)
			if u.Name != "Ann" || u.Email != "ann@example.com" || !u.CreatedAt.Equal(u.UpdatedAt) || u.DeletedAt != nil {
				t.Fatalf("created %+v", u)
			}
			checkTime(t, "CreatedAt", u.CreatedAt)
			got := must[domain.User](t, "get")(db.GetUser(c, u.ID))
			if !userEqual(got, u) {
				t.Fatalf("get = %+v, want %+v", got, u)
			}
			v := must[domain.User](t, "update")(db.UpdateUser(c, u.ID, domain.UserChange{Name: ptr("Anna")}))
			if v.Name != "Anna" || v.Email != "ann@example.com" || !v.UpdatedAt.After(u.UpdatedAt) || !v.CreatedAt.Equal(u.CreatedAt) {
				t.Fatalf("updated %+v", v)
			}
			if got := must[domain.User](t, "get")(db.GetUser(c, u.ID)); !userEqual(got, v) {
				t.Fatalf("get after update = %+v, want %+v", got, v)
			}
			if err := db.DeleteUser(c, u.ID); err != nil {
				t.Fatalf("delete: %v", err)
			}
			_, err := db.GetUser(c, u.ID)
			wantKind(t, "get tombstone", err, domain.KindNotFound)
			_, err = db.UpdateUser(c, u.ID, domain.UserChange{Name: ptr("B")})
			wantKind(t, "update tombstone", err, domain.KindNotFound)
			wantKind(t, "delete tombstone", db.DeleteUser(c, u.ID), domain.KindNotFound)
			if list := must[[]domain.User](t, "list")(db.ListUsers(c, store.Page{})); len(list) != 0 {
				t.Fatalf("list shows tombstones: %+v", list)
			}
			tomb, ok, err := db.LoadUser(c, u.ID)
			if err != nil || !ok || tomb.DeletedAt == nil || !tomb.DeletedAt.Equal(tomb.UpdatedAt) {
				t.Fatalf("load tombstone: %+v ok=%v err=%v", tomb, ok, err)
			}
			_, err = db.GetUser(c, u.ID+1000)
			wantKind(t, "get missing", err, domain.KindNotFound)
			if _, ok, err := db.LoadUser(c, u.ID+1000); ok || err != nil {
				t.Fatalf("load missing: ok=%v err=%v", ok, err)
			}
		})
	}
}

func testListPaging(t *testing.T, open Opener) {
	db := migrated(t, open, store.RoleFallback)
	c := ctx(t)
	var ids []int64
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		ids = append(ids, must[domain.Product](t, "create")(db.CreateProduct(c, productChange(n, "", 1))).ID)
		must[domain.User](t, "create user")(db.CreateUser(c, userChange(n, n+"@example.com")))
	}
	if err := db.DeleteProduct(c, ids[1]); err != nil {
		t.Fatal(err)
	}
	live := []int64{ids[0], ids[2], ids[3], ids[4]}
	tests := []struct {
		page store.Page
		want []int64
	}{
		{store.Page{Limit: 2}, live[:2]},
		{store.Page{After: live[1], Limit: 2}, live[2:]},
		{store.Page{After: live[3], Limit: 2}, nil},
		{store.Page{After: ids[0], Limit: 10}, live[1:]},
		{store.Page{}, live}, // no limit: the adapter's default page
		{store.Page{After: -5, Limit: 100}, live},
	}
	for _, tc := range tests {
		got := must[[]domain.Product](t, "list")(db.ListProducts(c, tc.page))
		var gotIDs []int64
		for _, p := range got {
			gotIDs = append(gotIDs, p.ID)
		}
		if !slices.Equal(gotIDs, tc.want) {
			t.Errorf("ListProducts(%+v) = %v, want %v", tc.page, gotIDs, tc.want)
		}
		if got == nil {
			t.Errorf("ListProducts(%+v) returned nil, want an empty slice", tc.page)
		}
	}
	users := must[[]domain.User](t, "list users")(db.ListUsers(c, store.Page{Limit: 3}))
	if len(users) != 3 || users[0].ID >= users[1].ID || users[1].ID >= users[2].ID {
		t.Fatalf("ListUsers limit 3 = %+v", users)
	}
	rest := must[[]domain.User](t, "list users")(db.ListUsers(c, store.Page{After: users[2].ID, Limit: 3}))
	if len(rest) != 2 || rest[0].ID <= users[2].ID {
		t.Fatalf("ListUsers second page = %+v", rest)
	}
}

func testIDParity(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			first := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("a", "", 1)))
			wantParity(t, role, first.ID)
			if first.ID > 2 {
				t.Fatalf("first id %d, want 1 or 2", first.ID)
			}
			own, other := int64(1001), int64(1002) // ids of this role's parity and the other's
			if role == store.RoleFallback {
				own, other = other, own
			}
			now := domain.Millis(time.Now())
			put := func(id int64) {
				t.Helper()
				p := domain.Product{ID: id, Name: "synced", Price: 1, CreatedAt: now, UpdatedAt: now}
				if _, err := db.PutProduct(c, p, nil); err != nil {
					t.Fatalf("put %d: %v", id, err)
				}
			}
			// The other side's ids never move this side's sequence.
			put(other)
			second := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("b", "", 1)))
			if second.ID != first.ID+2 {
				t.Fatalf("create after a Put of the other parity's id %d got id %d, want %d", other, second.ID, first.ID+2)
			}
			// An id of its own parity (a rebuilt database getting its old rows
			// back) moves the sequence past it: Create never reuses it.
			put(own)
			third := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("c", "", 1)))
			if third.ID != own+2 {
				t.Fatalf("create after a Put of own id %d got id %d, want %d", own, third.ID, own+2)
			}
			// Never backwards: a lower own id leaves it where it is.
			put(first.ID + 4)
			fourth := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("d", "", 1)))
			if fourth.ID != own+4 {
				t.Fatalf("create after a Put of a lower own id got %d, want %d", fourth.ID, own+4)
			}
			// Users have their own sequence, moved the same way.
			u0 := must[domain.User](t, "create user")(db.CreateUser(c, userChange("u", "u@example.com")))
			if u0.ID != first.ID {
				t.Fatalf("first user id = %d, want %d (independent sequence)", u0.ID, first.ID)
			}
			if _, err := db.PutUser(c, domain.User{ID: own + 10, Name: "s", Email: "s@example.com", CreatedAt: now, UpdatedAt: now}, nil); err != nil {
				t.Fatal(err)
			}
			u1 := must[domain.User](t, "create user")(db.CreateUser(c, userChange("v", "v@example.com")))
			if u1.ID != own+12 {
				t.Fatalf("user id after a Put of own id %d = %d, want %d", own+10, u1.ID, own+12)
			}
		})
	}
}

// testMaxIDAndAdvance: the highest id of each parity (tombstones count),
// and a sequence moved past an id the other database holds.
func testMaxIDAndAdvance(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
				if got := must[int64](t, "max id")(db.MaxID(c, e, 1)); got != 0 {
					t.Fatalf("%s: max odd id of an empty table = %d", e, got)
				}
			}
			now := domain.Millis(time.Now())
			for _, id := range []int64{7, 10, 13, 4} {
				p := domain.Product{ID: id, Name: "x", Price: 1, CreatedAt: now, UpdatedAt: now, Ver: domain.Vector{P: id, F: 20 - id}}
				if id == 13 {
					p.DeletedAt = &now
				}
				must[store.PutResult](t, "put")(db.PutProduct(c, p, nil))
			}
			if odd, even := must[int64](t, "max")(db.MaxID(c, domain.EntityProduct, 1)), must[int64](t, "max")(db.MaxID(c, domain.EntityProduct, 0)); odd != 13 || even != 10 {
				t.Fatalf("max ids odd %d even %d, want 13 and 10", odd, even)
			}
			// The other database holds an own-parity id far ahead; and one of
			// the other parity, which must change nothing.
			own := map[store.Role]int64{store.RolePrimary: 41, store.RoleFallback: 40}[role]
			for _, past := range []int64{own, own + 61} {
				if err := db.AdvanceSequence(c, domain.EntityProduct, past); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.AdvanceSequence(c, domain.EntityUser, own); err != nil {
				t.Fatal(err)
			}
			p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("n", "", 1)))
			u := must[domain.User](t, "create user")(db.CreateUser(c, userChange("n", "n@example.com")))
			if p.ID != own+2 || u.ID != own+2 {
				t.Fatalf("after advancing past %d: product %d, user %d; want %d", own, p.ID, u.ID, own+2)
			}
			// Never backwards.
			if err := db.AdvanceSequence(c, domain.EntityProduct, own-20); err != nil {
				t.Fatal(err)
			}
			if q := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("m", "", 1))); q.ID != own+4 {
				t.Fatalf("after a move backwards: id %d, want %d", q.ID, own+4)
			}
		})
	}
}

// testSequenceAtMigrate: Migrate again keeps the sequence past every own id
// (adapters' own tests also rewind the sequence, as a restore would, and
// check that Migrate moves it forward again).
func testSequenceAtMigrate(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	now := domain.Millis(time.Now())
	if _, err := db.PutProduct(c, domain.Product{ID: 501, Name: "x", Price: 1, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(c); err != nil {
		t.Fatal(err)
	}
	p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("a", "", 1)))
	if p.ID != 503 {
		t.Fatalf("create after Put 501 and Migrate: id %d, want 503", p.ID)
	}
}

func testNextVersion(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("a", "", 1)))
	prev := p.UpdatedAt
	// Back-to-back changes within one millisecond still get distinct,
	// increasing versions.
	for i := range 10 {
		u := must[domain.Product](t, "update")(db.UpdateProduct(c, p.ID, domain.ProductChange{Price: ptr(domain.Money(i + 2))}))
		if !u.UpdatedAt.After(prev) {
			t.Fatalf("update %d: updatedAt %v not after %v", i, u.UpdatedAt, prev)
		}
		prev = u.UpdatedAt
	}
	// A row whose updatedAt lies in the future (written by a clock ahead of
	// ours, via sync) still moves forward by at least 1 ms.
	future := domain.Millis(time.Now().Add(time.Hour))
	cur, _, _ := db.LoadProduct(c, p.ID)
	must[store.PutResult](t, "put")(db.PutProduct(c, domain.Product{ID: p.ID, Name: "f", Price: 1, CreatedAt: p.CreatedAt, UpdatedAt: future, Ver: cur.Ver}, &cur.Ver))
	u := must[domain.Product](t, "update")(db.UpdateProduct(c, p.ID, domain.ProductChange{Name: ptr("g")}))
	if !u.UpdatedAt.Equal(future.Add(time.Millisecond)) {
		t.Fatalf("update after a future version: updatedAt %v, want %v", u.UpdatedAt, future.Add(time.Millisecond))
	}
	if err := db.DeleteProduct(c, p.ID); err != nil {
		t.Fatal(err)
	}
	tomb, _, _ := db.LoadProduct(c, p.ID)
	if !tomb.UpdatedAt.Equal(future.Add(2 * time.Millisecond)) {
		t.Fatalf("delete after a future version: updatedAt %v, want %v", tomb.UpdatedAt, future.Add(2*time.Millisecond))
	}
}

func testOutbox(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	before := domain.Millis(time.Now().Add(-time.Minute))
	far := domain.Millis(time.Now().Add(time.Hour))

	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 0 {
		t.Fatalf("fresh depth %d", n)
	}
	p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("a", "", 1)))
	u := must[domain.Product](t, "update")(db.UpdateProduct(c, p.ID, domain.ProductChange{Name: ptr("b")}))
	if err := db.DeleteProduct(c, p.ID); err != nil {
		t.Fatal(err)
	}
	tomb, _, _ := db.LoadProduct(c, p.ID)
	usr := must[domain.User](t, "create user")(db.CreateUser(c, userChange("a", "a@example.com")))
	// Failed changes and sync writes write no outbox rows.
	_, _ = db.UpdateProduct(c, p.ID, productChange("x", "", 1))
	_, _ = db.CreateUser(c, userChange("dup", "A@example.com"))
	must[store.PutResult](t, "put")(db.PutProduct(c, domain.Product{ID: 1000, Name: "s", Price: 1, CreatedAt: far, UpdatedAt: far}, nil))
	must[store.PutResult](t, "put user")(db.PutUser(c, domain.User{ID: 1000, Name: "s", Email: "s@example.com", CreatedAt: far, UpdatedAt: far}, nil))

	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 4 {
		t.Fatalf("depth %d, want 4 (create, update, delete, create user)", n)
	}
	// Nothing is pending while all entries are younger than notSentBefore.
	if got := must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, before, before, 10)); len(got) != 0 {
		t.Fatalf("pending with notSentBefore in the past = %+v", got)
	}
	pending := must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, far, before, 10))
	// Each entry carries the primary's vector entry after its write.
	want := []struct {
		e  domain.Entity
		id int64
		v  int64
	}{
		{domain.EntityProduct, p.ID, p.Ver.P},
		{domain.EntityProduct, p.ID, p.Ver.P + 1},
		{domain.EntityProduct, p.ID, p.Ver.P + 2},
		{domain.EntityUser, usr.ID, p.Ver.P},
	}
	// Creates start at the process's floor, each next write one past.
	f := p.Ver.P
	if f == 0 || p.Ver != (domain.Vector{P: f}) || u.Ver != (domain.Vector{P: f + 1}) || tomb.Ver != (domain.Vector{P: f + 2}) || usr.Ver != (domain.Vector{P: f}) {
		t.Fatalf("vectors %v %v %v %v, want F/0, F+1/0, F+2/0, F/0", p.Ver, u.Ver, tomb.Ver, usr.Ver)
	}
	if len(pending) != len(want) {
		t.Fatalf("pending = %+v, want %d entries", pending, len(want))
	}
	for i, w := range want {
		e := pending[i]
		if e.Entity != w.e || e.ID != w.id || e.Counter != w.v || e.SentAt != nil {
			t.Fatalf("pending[%d] = %+v, want %v %d counter %d unsent", i, e, w.e, w.id, w.v)
		}
		checkTime(t, "CreatedAt", e.CreatedAt)
		if i > 0 && e.Seq <= pending[i-1].Seq {
			t.Fatalf("pending not oldest first: %+v", pending)
		}
	}
	if got := must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, far, before, 2)); len(got) != 2 || got[0].Seq != pending[0].Seq {
		t.Fatalf("pending limit 2 = %+v", got)
	}

	// Mark the product's first two versions sent.
	sentAt := domain.Millis(time.Now())
	if err := db.MarkOutboxSent(c, domain.EntityProduct, []store.OutboxMark{{ID: p.ID, UpTo: u.Ver.P}}, sentAt); err != nil {
		t.Fatal(err)
	}
	got := must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, far, sentAt, 10))
	if len(got) != 2 || got[0].Counter != tomb.Ver.P || got[1].Entity != domain.EntityUser {
		t.Fatalf("pending after mark (sent ones not yet due) = %+v", got)
	}
	got = must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, far, sentAt.Add(time.Millisecond), 10))
	if len(got) != 4 || got[0].SentAt == nil || !got[0].SentAt.Equal(sentAt) || got[2].SentAt != nil {
		t.Fatalf("pending after mark (sent ones due again) = %+v", got)
	}
	// Sent entries are pending only by resendBefore, never by notSentBefore.
	got = must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, far, before, 10))
	if len(got) != 2 {
		t.Fatalf("pending by notSentBefore only = %+v", got)
	}
	// Marking another id changes nothing.
	if err := db.MarkOutboxSent(c, domain.EntityProduct, []store.OutboxMark{{ID: p.ID + 424242, UpTo: math.MaxInt64}}, sentAt); err != nil {
		t.Fatal(err)
	}
	if got := must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, far, before, 10)); len(got) != 2 {
		t.Fatalf("mark of another id changed entries: %+v", got)
	}

	// Ack up to the update's counter: two rows go, the tombstone's stays.
	if err := db.AckOutbox(c, domain.EntityProduct, []store.OutboxMark{{ID: p.ID, UpTo: u.Ver.P}}); err != nil {
		t.Fatal(err)
	}
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 2 {
		t.Fatalf("depth after ack = %d, want 2", n)
	}
	if err := db.AckOutbox(c, domain.EntityUser, []store.OutboxMark{{ID: usr.ID, UpTo: usr.Ver.P - 1}}); err != nil {
		t.Fatal(err)
	}
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 2 {
		t.Fatalf("ack of an older version removed entries: depth %d", n)
	}
	if err := db.AckOutbox(c, domain.EntityProduct, []store.OutboxMark{{ID: p.ID, UpTo: math.MaxInt64}}); err != nil {
		t.Fatal(err)
	}
	if err := db.AckOutbox(c, domain.EntityUser, []store.OutboxMark{{ID: usr.ID, UpTo: usr.Ver.P}}); err != nil {
		t.Fatal(err)
	}
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 0 {
		t.Fatalf("depth after acking all = %d", n)
	}
	// Acking nothing is fine.
	if err := db.AckOutbox(c, domain.EntityProduct, []store.OutboxMark{{ID: 424242, UpTo: math.MaxInt64}}); err != nil {
		t.Fatal(err)
	}

	// One mark covers several items, each up to its own counter; the
	// other entity's entries of the same ids are not touched.
	var marks []store.OutboxMark
	for i := range 3 {
		q := must[domain.Product](t, "create")(db.CreateProduct(c, productChange(fmt.Sprint("m", i), "", 1)))
		must[domain.Product](t, "update")(db.UpdateProduct(c, q.ID, domain.ProductChange{Name: ptr("m2")}))
		marks = append(marks, store.OutboxMark{ID: q.ID, UpTo: q.Ver.P + int64(i%2)}) // the create; create and update; the create
	}
	usr2 := must[domain.User](t, "create user")(db.CreateUser(c, userChange("m", "m@example.com")))
	if err := db.MarkOutboxSent(c, domain.EntityProduct, append(marks, store.OutboxMark{ID: usr2.ID, UpTo: math.MaxInt64}), sentAt); err != nil {
		t.Fatal(err)
	}
	if err := db.MarkOutboxSent(c, domain.EntityProduct, nil, sentAt); err != nil {
		t.Fatalf("marking nothing: %v", err)
	}
	sent := map[int64][]int64{}
	for _, e := range must[[]store.OutboxEntry](t, "pending")(db.PendingOutbox(c, far, far, 100)) {
		if e.SentAt != nil {
			sent[e.ID] = append(sent[e.ID], e.Counter) // relative to the item's create
		}
	}
	for i := range marks {
		first := marks[i].UpTo - int64(i%2)
		for j := range sent[marks[i].ID] {
			sent[marks[i].ID][j] -= first - 1
		}
	}
	wantSent := map[int64][]int64{marks[0].ID: {1}, marks[1].ID: {1, 2}, marks[2].ID: {1}}
	if !maps.EqualFunc(sent, wantSent, slices.Equal) {
		t.Fatalf("sent entries by id = %v, want %v", sent, wantSent)
	}
}

func productEqual(a, b domain.Product) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Description == b.Description && a.Price == b.Price &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && timePtrEqual(a.DeletedAt, b.DeletedAt)
}

func userEqual(a, b domain.User) bool {
	return a.ID == b.ID && a.Name == b.Name && a.Email == b.Email &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && timePtrEqual(a.DeletedAt, b.DeletedAt)
}

func timePtrEqual(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func productSynced(a, b domain.Product) bool {
	return productEqual(a, b) && a.Ver == b.Ver && a.NameAt.Equal(b.NameAt) && a.DescriptionAt.Equal(b.DescriptionAt) && a.PriceAt.Equal(b.PriceAt)
}

func testPutProduct(t *testing.T, open Opener) {
	db := migrated(t, open, store.RoleFallback)
	c := ctx(t)
	t0 := time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	row := func(name string, updated time.Time, ver domain.Vector, deleted bool) domain.Product {
		p := domain.Product{ID: 77, Name: name, Description: "d-" + name, Price: 12_34, CreatedAt: at(0), UpdatedAt: updated,
			Ver: ver, NameAt: updated, DescriptionAt: at(0), PriceAt: at(0)}
		if deleted {
			p.DeletedAt = ptr(updated)
		}
		return p
	}
	v := func(p, f int64) *domain.Vector { return &domain.Vector{P: p, F: f} }
	steps := []struct {
		name   string
		put    domain.Product
		expect *domain.Vector
		want   store.PutResult // "" : refused with ErrChanged
		after  domain.Product  // the stored row afterwards
	}{
		{"absent, expected absent: created", row("v1", at(10), domain.Vector{P: 1}, false), nil, store.PutCreated, row("v1", at(10), domain.Vector{P: 1}, false)},
		{"present, expected absent: refused", row("x", at(99), domain.Vector{P: 9}, false), nil, "", row("v1", at(10), domain.Vector{P: 1}, false)},
		{"vector differs: refused", row("x", at(99), domain.Vector{P: 9}, false), v(2, 0), "", row("v1", at(10), domain.Vector{P: 1}, false)},
		{"vector matches: updated, every column", row("v2", at(5), domain.Vector{P: 2, F: 1}, false), v(1, 0), store.PutUpdated, row("v2", at(5), domain.Vector{P: 2, F: 1}, false)},
		{"a tombstone over a live row: deleted", row("v3", at(30), domain.Vector{P: 3, F: 1}, true), v(2, 1), store.PutDeleted, row("v3", at(30), domain.Vector{P: 3, F: 1}, true)},
		{"tombstone over tombstone: updated", row("v4", at(40), domain.Vector{P: 4, F: 1}, true), v(3, 1), store.PutUpdated, row("v4", at(40), domain.Vector{P: 4, F: 1}, true)},
		{"live over tombstone: updated", row("v5", at(50), domain.Vector{P: 4, F: 2}, false), v(4, 1), store.PutUpdated, row("v5", at(50), domain.Vector{P: 4, F: 2}, false)},
	}
	for _, s := range steps {
		got, err := db.PutProduct(c, s.put, s.expect)
		if s.want == "" {
			if !errors.Is(err, store.ErrChanged) {
				t.Fatalf("%s: result %q err %v, want ErrChanged", s.name, got, err)
			}
		} else if err != nil || got != s.want {
			t.Fatalf("%s: result %q err %v, want %q", s.name, got, err, s.want)
		}
		stored, ok, err := db.LoadProduct(c, 77)
		if err != nil || !ok || !productSynced(stored, s.after) {
			t.Fatalf("%s: stored %+v (ok=%v err=%v), want %+v", s.name, stored, ok, err, s.after)
		}
		_, getErr := db.GetProduct(c, 77)
		if s.after.Deleted() != domain.IsKind(getErr, domain.KindNotFound) {
			t.Fatalf("%s: GetProduct err %v, tombstone %v", s.name, getErr, s.after.Deleted())
		}
	}
	// Expecting a vector where the row is absent is refused too.
	absent := row("y", at(1), domain.Vector{P: 1}, false)
	absent.ID = 81
	if _, err := db.PutProduct(c, absent, v(0, 0)); !errors.Is(err, store.ErrChanged) {
		t.Fatalf("put expecting a vector on an absent row: %v", err)
	}
	// An absent row that arrives as a tombstone is created, and hidden.
	got := must[store.PutResult](t, "put tombstone")(db.PutProduct(c, domain.Product{ID: 79, Name: "t", Price: 1, CreatedAt: at(0), UpdatedAt: at(1), DeletedAt: ptr(at(1))}, nil))
	if got != store.PutCreated {
		t.Fatalf("put of an absent tombstone: %q", got)
	}
	_, err := db.GetProduct(c, 79)
	wantKind(t, "get put tombstone", err, domain.KindNotFound)
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 0 {
		t.Fatalf("Put wrote %d outbox rows", n)
	}
}

// PutProducts: each put of a batch is its own compare-and-set; LoadProducts
// reads them back.
func testPutProducts(t *testing.T, open Opener) {
	db := migrated(t, open, store.RoleFallback)
	c := ctx(t)
	t0 := time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)
	row := func(id int64, name string, ver domain.Vector, deleted bool) domain.Product {
		p := domain.Product{ID: id, Name: name, Description: "d-" + name, Price: 12_34, CreatedAt: t0, UpdatedAt: t0.Add(time.Second),
			Ver: ver, NameAt: t0.Add(time.Second), DescriptionAt: t0, PriceAt: t0}
		if deleted {
			p.DeletedAt = ptr(t0.Add(time.Second))
		}
		return p
	}
	v := func(p, f int64) *domain.Vector { return &domain.Vector{P: p, F: f} }
	old := domain.Vector{P: 1}
	for _, id := range []int64{203, 205, 209, 211} {
		must[store.PutResult](t, "put")(db.PutProduct(c, row(id, "old", old, false), nil))
	}
	puts := []store.ProductPut{
		{Product: row(201, "new", domain.Vector{P: 1}, false), Expect: nil},     // absent, expected absent
		{Product: row(203, "new", domain.Vector{P: 2}, false), Expect: v(1, 0)}, // vector matches
		{Product: row(205, "new", domain.Vector{P: 2}, false), Expect: v(9, 9)}, // vector differs
		{Product: row(207, "new", domain.Vector{P: 2}, false), Expect: v(1, 0)}, // expected present, absent
		{Product: row(209, "new", domain.Vector{P: 2}, true), Expect: v(1, 0)},  // a tombstone over a live row
		{Product: row(211, "new", domain.Vector{P: 2}, false), Expect: nil},     // expected absent, present
		{Product: row(1002, "new", domain.Vector{F: 1}, false), Expect: nil},    // this side's parity
	}
	got := must[[]store.PutResult](t, "put products")(db.PutProducts(c, puts))
	want := []store.PutResult{store.PutCreated, store.PutUpdated, store.PutChanged, store.PutChanged, store.PutDeleted, store.PutChanged, store.PutCreated}
	if !slices.Equal(got, want) {
		t.Fatalf("PutProducts = %v, want %v", got, want)
	}
	rows := must[map[int64]domain.Product](t, "load products")(db.LoadProducts(c, []int64{201, 203, 205, 207, 209, 211, 1002, 999}))
	for i, put := range puts {
		stored, ok := rows[put.Product.ID]
		switch {
		case want[i] != store.PutChanged:
			if !ok || !productSynced(stored, put.Product) {
				t.Errorf("product %d stored %+v (ok=%v), want %+v", put.Product.ID, stored, ok, put.Product)
			}
		case put.Product.ID == 207:
			if ok {
				t.Errorf("product 207 written over a refused put: %+v", stored)
			}
		case !ok || stored.Name != "old" || stored.Ver != old:
			t.Errorf("product %d = %+v (ok=%v), want the old row untouched", put.Product.ID, stored, ok)
		}
	}
	if _, ok := rows[999]; ok || len(rows) != 6 {
		t.Errorf("LoadProducts returned %d rows, want the 6 present", len(rows))
	}
	if next := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("after", "", 1))); next.ID <= 1002 {
		t.Errorf("created id %d after a batch inserted 1002, want > 1002", next.ID)
	}
	if _, err := db.PutProducts(c, []store.ProductPut{{Product: row(301, "a", old, false), Expect: nil}, {Product: row(301, "b", old, false), Expect: nil}}); !domain.IsKind(err, domain.KindInvalid) {
		t.Errorf("a batch with one id twice: %v, want Invalid", err)
	}
	if got := must[[]store.PutResult](t, "put nothing")(db.PutProducts(c, nil)); len(got) != 0 {
		t.Errorf("PutProducts(nil) = %v", got)
	}
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 1 {
		t.Fatalf("outbox depth %d, want only the API create's", n)
	}
}

func testPutUser(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	t0 := time.Date(2025, 3, 24, 0, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	vers := map[int64]*domain.Vector{} // what each id holds now (nil: absent)
	row := func(id int64, email string, updated time.Time, deleted bool) domain.User {
		u := domain.User{ID: id, Name: "n-" + email, Email: email, CreatedAt: at(0), UpdatedAt: updated, NameAt: updated, EmailAt: updated}
		if deleted {
			u.DeletedAt = ptr(updated)
		}
		return u
	}
	steps := []struct {
		name string
		put  domain.User
		want store.PutResult
		kind domain.Kind // for errors
	}{
		{"absent: created", row(100, "a@example.com", at(10), false), store.PutCreated, 0},
		{"present: updated", row(100, "c@example.com", at(20), false), store.PutUpdated, 0},
		{"other id, email of a live user (other case): conflict", row(102, "C@Example.com", at(30), false), "", domain.KindConflict},
		{"other id, full-width form of a live email: conflict", row(102, "ｃ@example.com", at(30), false), "", domain.KindConflict},
		{"same id may keep its own email in another case", row(100, "C@EXAMPLE.com", at(25), false), store.PutUpdated, 0},
		{"other id, tombstone with a taken email: fine", row(104, "c@example.com", at(30), true), store.PutCreated, 0},
		{"tombstone: deleted", row(100, "c@example.com", at(40), true), store.PutDeleted, 0},
		{"email freed by the tombstone", row(102, "c@example.com", at(30), false), store.PutCreated, 0},
		{"overwrite onto a taken email: conflict", row(106, "z@example.com", at(1), false), store.PutCreated, 0},
		{"...updating 106 to 102's email conflicts", row(106, "C@example.COM", at(2), false), "", domain.KindConflict},
	}
	for i, s := range steps {
		before, existed, _ := db.LoadUser(c, s.put.ID)
		s.put.Ver = domain.Vector{P: int64(i + 1)}
		got, err := db.PutUser(c, s.put, vers[s.put.ID])
		if s.kind != 0 {
			wantKind(t, s.name, err, s.kind)
			after, exists, _ := db.LoadUser(c, s.put.ID)
			if exists != existed || (exists && !userEqual(after, before)) {
				t.Fatalf("%s: a failed put changed the row: %+v -> %+v", s.name, before, after)
			}
			continue
		}
		if err != nil || got != s.want {
			t.Fatalf("%s: result %q err %v, want %q", s.name, got, err, s.want)
		}
		vers[s.put.ID] = &s.put.Ver
		stored, _, _ := db.LoadUser(c, s.put.ID)
		if !userEqual(stored, s.put) || stored.Ver != s.put.Ver || !stored.EmailAt.Equal(s.put.EmailAt) {
			t.Fatalf("%s: stored %+v, want %+v", s.name, stored, s.put)
		}
	}
	if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 0 {
		t.Fatalf("Put wrote %d outbox rows", n)
	}
	// A stale expectation is refused before any email check.
	_, err := db.PutUser(c, row(106, "q@example.com", at(3), false), &domain.Vector{P: 99})
	if !errors.Is(err, store.ErrChanged) {
		t.Fatalf("put with a stale vector: %v, want ErrChanged", err)
	}
}

// testVersions: API writes count in their side's vector entry (the first
// at the process's floor, each next one past it), and only changed fields
// get the write's time.
func testVersions(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			var first int64 // this side's entry after the first create
			own := func(n int64) domain.Vector {
				if role == store.RolePrimary {
					return domain.Vector{P: first + n - 1}
				}
				return domain.Vector{F: first + n - 1}
			}
			p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("a", "d", 1)))
			first = store.Own(role, p.Ver)
			// The floor is the process's start in microseconds: far above any count.
			if first < domain.Floor(time.Now().Add(-time.Hour)) || p.Ver != own(1) || p.Jump != (domain.Jump{}) ||
				!p.NameAt.Equal(p.CreatedAt) || !p.DescriptionAt.Equal(p.CreatedAt) || !p.PriceAt.Equal(p.CreatedAt) {
				t.Fatalf("created %+v", p)
			}
			// A patch that sets the price and repeats the name: only the price's time moves.
			u := must[domain.Product](t, "update")(db.UpdateProduct(c, p.ID, domain.ProductChange{Name: ptr("a"), Price: ptr(domain.Money(2))}))
			if u.Ver != own(2) || !u.NameAt.Equal(p.NameAt) || !u.DescriptionAt.Equal(p.DescriptionAt) || !u.PriceAt.Equal(u.UpdatedAt) || !u.PriceAt.After(p.PriceAt) {
				t.Fatalf("updated %+v from %+v", u, p)
			}
			if got, _, _ := db.LoadProduct(c, p.ID); !productSynced(got, u) {
				t.Fatalf("loaded %+v, want %+v", got, u)
			}
			if err := db.DeleteProduct(c, p.ID); err != nil {
				t.Fatal(err)
			}
			if tomb, _, _ := db.LoadProduct(c, p.ID); tomb.Ver != own(3) || !tomb.PriceAt.Equal(u.PriceAt) {
				t.Fatalf("tombstone %+v", tomb)
			}
			usr := must[domain.User](t, "create user")(db.CreateUser(c, userChange("n", "n@example.com")))
			v := must[domain.User](t, "update user")(db.UpdateUser(c, usr.ID, domain.UserChange{Email: ptr("m@example.com")}))
			// Every create starts at the floor: a new row has no history.
			if usr.Ver != own(1) || v.Ver != own(2) || !v.NameAt.Equal(usr.NameAt) || !v.EmailAt.Equal(v.UpdatedAt) {
				t.Fatalf("user %+v then %+v", usr, v)
			}
			if got, _, _ := db.LoadUser(c, usr.ID); got.Ver != v.Ver || !got.EmailAt.Equal(v.EmailAt) || !got.NameAt.Equal(v.NameAt) {
				t.Fatalf("loaded user %+v, want %+v", got, v)
			}
		})
	}
}

// testJumps: the first API write of a row that an earlier process (or a
// database before a restore) wrote moves this side's entry up to the
// process's floor and records the skip, locally: sync writes neither copy
// nor clear it.
func testJumps(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			vec := func(own, other int64) domain.Vector {
				if role == store.RolePrimary {
					return domain.Vector{P: own, F: other}
				}
				return domain.Vector{P: other, F: own}
			}
			t0 := domain.Millis(time.Now().Add(-time.Hour))
			id := int64(301)
			if role == store.RoleFallback {
				id = 302
			}
			old := domain.Product{ID: id, Name: "old", Price: 1, CreatedAt: t0, UpdatedAt: t0, NameAt: t0, DescriptionAt: t0, PriceAt: t0, Ver: vec(5, 3)}
			must[store.PutResult](t, "put")(db.PutProduct(c, old, nil))
			u := must[domain.Product](t, "update")(db.UpdateProduct(c, id, domain.ProductChange{Name: ptr("new")}))
			own := store.Own(role, u.Ver)
			if own < domain.Floor(time.Now().Add(-time.Hour)) || u.Ver != vec(own, 3) || u.Jump != (domain.Jump{From: 5, To: own}) {
				t.Fatalf("first write after a restart: %+v, want the entry at the floor and the jump 5 -> floor", u)
			}
			if got, _, _ := db.LoadProduct(c, id); got.Jump != u.Jump || got.Ver != u.Ver {
				t.Fatalf("loaded %+v, want vector %v and jump %v", got, u.Ver, u.Jump)
			}
			// A sync write keeps the local jump; the next API write counts on.
			synced := u
			synced.Ver, synced.Jump = u.Ver.Max(vec(0, 9)), domain.Jump{From: 1, To: 2}
			must[store.PutResult](t, "put over")(db.PutProduct(c, synced, &u.Ver))
			if err := db.DeleteProduct(c, id); err != nil {
				t.Fatal(err)
			}
			tomb, _, _ := db.LoadProduct(c, id)
			if tomb.Ver != vec(own+1, 9) || tomb.Jump != u.Jump {
				t.Fatalf("tombstone %+v, want vector %v and the jump %v kept", tomb, vec(own+1, 9), u.Jump)
			}
			// Users alike.
			ou := domain.User{ID: id, Name: "n", Email: "j@example.com", CreatedAt: t0, UpdatedAt: t0, NameAt: t0, EmailAt: t0, Ver: vec(7, 0)}
			must[store.PutResult](t, "put user")(db.PutUser(c, ou, nil))
			nu := must[domain.User](t, "update user")(db.UpdateUser(c, id, domain.UserChange{Name: ptr("m")}))
			if o := store.Own(role, nu.Ver); nu.Jump != (domain.Jump{From: 7, To: o}) || o < own {
				t.Fatalf("user after a restart: %+v", nu)
			}
			if got, _, _ := db.LoadUser(c, id); got.Jump != nu.Jump {
				t.Fatalf("loaded user %+v, want jump %v", got, nu.Jump)
			}
		})
	}
}

// testPutUsersSwap: two users' emails swapped in one joint put, which single
// puts cannot do (each would hit the other's email).
func testPutUsersSwap(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	now := domain.Millis(time.Now())
	a := domain.User{ID: 200, Name: "a", Email: "a@example.com", CreatedAt: now, UpdatedAt: now, NameAt: now, EmailAt: now, Ver: domain.Vector{P: 1}}
	b := domain.User{ID: 202, Name: "b", Email: "b@example.com", CreatedAt: now, UpdatedAt: now, NameAt: now, EmailAt: now, Ver: domain.Vector{P: 1}}
	must[store.PutResult](t, "put a")(db.PutUser(c, a, nil))
	must[store.PutResult](t, "put b")(db.PutUser(c, b, nil))
	a2, b2 := a, b
	a2.Email, b2.Email = b.Email, a.Email
	a2.Ver, b2.Ver = domain.Vector{P: 1, F: 2}, domain.Vector{P: 1, F: 1}
	_, err := db.PutUser(c, a2, &a.Ver)
	wantKind(t, "single put of a swap", err, domain.KindConflict)
	// A stale expectation anywhere refuses the whole batch.
	_, err = db.PutUsers(c, []store.UserPut{{User: a2, Expect: &a.Ver}, {User: b2, Expect: &a2.Ver}})
	if !errors.Is(err, store.ErrChanged) {
		t.Fatalf("joint put with a stale vector: %v", err)
	}
	res, err := db.PutUsers(c, []store.UserPut{{User: a2, Expect: &a.Ver}, {User: b2, Expect: &b.Ver}})
	if err != nil || len(res) != 2 || res[0] != store.PutUpdated || res[1] != store.PutUpdated {
		t.Fatalf("joint put: %v %v", res, err)
	}
	for _, want := range []domain.User{a2, b2} {
		got, _, _ := db.LoadUser(c, want.ID)
		if got.Email != want.Email || got.Ver != want.Ver {
			t.Fatalf("user %d = %+v, want %+v", want.ID, got, want)
		}
		byEmail, ok, err := db.UserByEmail(c, strings.ToUpper(want.Email))
		if err != nil || !ok || byEmail.ID != want.ID {
			t.Fatalf("UserByEmail(%s) = %+v %v %v", want.Email, byEmail, ok, err)
		}
	}
	if _, ok, err := db.UserByEmail(c, "nobody@example.com"); ok || err != nil {
		t.Fatalf("UserByEmail of a free email: ok=%v err=%v", ok, err)
	}
}

// testEmailKey: uniqueness is by domain.EmailKey in both databases, so the
// two agree on which emails are the same: case, full-width letters and
// surrounding spaces are the same email; trailing spaces do not make a
// different one, and accents do.
func testEmailKey(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	must[domain.User](t, "create")(db.CreateUser(c, userChange("A", "ann@example.com")))
	for _, email := range []string{"ANN@example.com", "ａｎｎ@example.com", "ＡＮＮ@ＥＸＡＭＰＬＥ.com", "ann@example.com "} {
		_, err := db.CreateUser(c, userChange("Dup", email))
		wantKind(t, fmt.Sprintf("create %q", email), err, domain.KindConflict)
	}
	// Different emails under the key stay different (a kana- or
	// accent-insensitive collation would equate these).
	for _, email := range []string{"ánn@example.com", "anne@example.com", "カ@example.com", "か@example.com"} {
		must[domain.User](t, "create "+email)(db.CreateUser(c, userChange("Other", email)))
	}
}

func testEmailUniqueness(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	ann := must[domain.User](t, "create")(db.CreateUser(c, userChange("Ann", "Ann@Example.com")))
	bob := must[domain.User](t, "create")(db.CreateUser(c, userChange("Bob", "bob@example.com")))
	for _, email := range []string{"Ann@Example.com", "ann@example.com", "ANN@EXAMPLE.COM"} {
		_, err := db.CreateUser(c, userChange("Dup", email))
		wantKind(t, "create "+email, err, domain.KindConflict)
		var de *domain.Error
		if errors.As(err, &de) && de.Message != "a user with this email already exists" {
			t.Errorf("conflict message %q", de.Message)
		}
		_, err = db.UpdateUser(c, bob.ID, domain.UserChange{Email: ptr(email)})
		wantKind(t, "update to "+email, err, domain.KindConflict)
	}
	if got := must[domain.User](t, "get")(db.GetUser(c, bob.ID)); !userEqual(got, bob) {
		t.Fatalf("a failed update changed bob: %+v", got)
	}
	// A user may change the case of their own email.
	must[domain.User](t, "own email")(db.UpdateUser(c, ann.ID, domain.UserChange{Email: ptr("ann@example.com")}))
	// A tombstone frees the email.
	if err := db.DeleteUser(c, ann.ID); err != nil {
		t.Fatal(err)
	}
	again := must[domain.User](t, "create after delete")(db.CreateUser(c, userChange("Ann 2", "ANN@example.com")))
	if again.ID == ann.ID {
		t.Fatalf("id reused: %d", again.ID)
	}
	must[domain.User](t, "bob takes a freed email")(db.UpdateUser(c, bob.ID, domain.UserChange{Email: ptr("ann.old@example.com")}))
}

func testIDs(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	var ids []int64
	for range 4 {
		ids = append(ids, must[domain.Product](t, "create")(db.CreateProduct(c, productChange("p", "", 1))).ID)
	}
	if err := db.DeleteProduct(c, ids[1]); err != nil {
		t.Fatal(err)
	}
	now := domain.Millis(time.Now())
	must[store.PutResult](t, "put")(db.PutProduct(c, domain.Product{ID: 50, Name: "t", Price: 1, CreatedAt: now, UpdatedAt: now, DeletedAt: &now}, nil))
	all := append(slices.Clone(ids), 50)
	u := must[domain.User](t, "create user")(db.CreateUser(c, userChange("u", "u@example.com")))
	tests := []struct {
		e     domain.Entity
		after int64
		limit int
		want  []int64
	}{
		{domain.EntityProduct, 0, 100, all},
		{domain.EntityProduct, 0, 2, all[:2]},
		{domain.EntityProduct, all[1], 2, all[2:4]},
		{domain.EntityProduct, all[3], 10, all[4:]},
		{domain.EntityProduct, 50, 10, nil},
		{domain.EntityUser, 0, 10, []int64{u.ID}},
	}
	for _, tc := range tests {
		got := must[[]int64](t, "ids")(db.IDs(c, tc.e, tc.after, tc.limit))
		if !slices.Equal(got, tc.want) {
			t.Errorf("IDs(%s, %d, %d) = %v, want %v", tc.e, tc.after, tc.limit, got, tc.want)
		}
	}
	_, err := db.IDs(c, domain.Entity("order"), 0, 10)
	if err == nil {
		t.Fatal("IDs of an unknown entity: no error")
	}
}

func testSeed(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			// A user already holding a sample email is left alone.
			now := domain.Millis(time.Now())
			taken := domain.User{ID: 1001, Name: "Early", Email: sample.Users[1].Email, CreatedAt: now, UpdatedAt: now}
			must[store.PutResult](t, "put")(db.PutUser(c, taken, nil))
			for i := range 2 {
				if err := sample.Load(c, db); err != nil {
					t.Fatalf("Seed %d: %v", i+1, err)
				}
			}
			products := must[[]domain.Product](t, "list")(db.ListProducts(c, store.Page{Limit: 100}))
			if len(products) != len(sample.Products) {
				t.Fatalf("after seeding twice: %d products, want %d", len(products), len(sample.Products))
			}
			// Exactly the sample rows, vector and field times included, so
			// both databases hold the very same rows and sync leaves them be.
			for i, p := range products {
				if !productSynced(p, sample.Products[i]) {
					t.Fatalf("product %d = %+v, want %+v", i, p, sample.Products[i])
				}
			}
			users := must[[]domain.User](t, "list users")(db.ListUsers(c, store.Page{Limit: 100}))
			if len(users) != len(sample.Users) { // the taken email's sample user was skipped
				t.Fatalf("after seeding twice: %d users, want %d: %+v", len(users), len(sample.Users), users)
			}
			for _, u := range users {
				if u.ID == taken.ID {
					continue
				}
				i := slices.IndexFunc(sample.Users, func(s domain.User) bool { return s.ID == u.ID })
				if i < 0 || !userEqual(u, sample.Users[i]) || u.Ver != (domain.Vector{}) || !u.NameAt.Equal(sample.Stamp) || !u.EmailAt.Equal(sample.Stamp) {
					t.Fatalf("user %+v is not a sample user as loaded", u)
				}
			}
			if got := must[domain.User](t, "get")(db.GetUser(c, taken.ID)); !userEqual(got, taken) {
				t.Fatalf("seed changed an existing user: %+v", got)
			}
			if n := must[int64](t, "depth")(db.OutboxDepth(c)); n != 0 {
				t.Fatalf("seed wrote outbox rows: depth %d", n)
			}
			// New rows never collide with sample ids.
			p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("new", "", 1)))
			wantParity(t, role, p.ID)
			for _, s := range sample.Products {
				if p.ID == s.ID {
					t.Fatalf("new product got sample id %d", p.ID)
				}
			}
			// A deleted sample row stays deleted when seeding again.
			if err := db.DeleteProduct(c, sample.Products[0].ID); err != nil {
				t.Fatal(err)
			}
			if err := sample.Load(c, db); err != nil {
				t.Fatal(err)
			}
			_, err := db.GetProduct(c, sample.Products[0].ID)
			wantKind(t, "get deleted sample product", err, domain.KindNotFound)
		})
	}
}

func testMoney(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	now := domain.Millis(time.Now())
	for i, m := range []domain.Money{0, 1, 10, 99, 100, 299_99, domain.MaxMoney} {
		p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("m", "", m)))
		if got := must[domain.Product](t, "get")(db.GetProduct(c, p.ID)); got.Price != m {
			t.Errorf("price %s came back as %s", m, got.Price)
		}
		id := int64(1000 + 2*i)
		must[store.PutResult](t, "put")(db.PutProduct(c, domain.Product{ID: id, Name: "m", Price: m, CreatedAt: now, UpdatedAt: now}, nil))
		if got, _, _ := db.LoadProduct(c, id); got.Price != m {
			t.Errorf("put price %s came back as %s", m, got.Price)
		}
	}
}

func testTimes(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	// Sub-millisecond parts and other zones are normalised before writing.
	loc := time.FixedZone("UTC+5", 5*3600)
	created := time.Date(2025, 3, 24, 10, 23, 54, 611_999_999, loc)
	updated := time.Date(2025, 3, 24, 10, 23, 55, 1_500_000, loc)
	must[store.PutResult](t, "put")(db.PutProduct(c, domain.Product{ID: 5001, Name: "t", Price: 1, CreatedAt: created, UpdatedAt: updated}, nil))
	got, _, err := db.LoadProduct(c, 5001)
	if err != nil {
		t.Fatal(err)
	}
	wantCreated := time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)
	wantUpdated := time.Date(2025, 3, 24, 5, 23, 55, 1_000_000, time.UTC)
	if !got.CreatedAt.Equal(wantCreated) || !got.UpdatedAt.Equal(wantUpdated) {
		t.Fatalf("times %v / %v, want %v / %v", got.CreatedAt, got.UpdatedAt, wantCreated, wantUpdated)
	}
	checkTime(t, "CreatedAt", got.CreatedAt)
	checkTime(t, "UpdatedAt", got.UpdatedAt)
	// Field change times are normalised the same way.
	must[store.PutResult](t, "put fields")(db.PutProduct(c, domain.Product{ID: 5003, Name: "t", Price: 1, CreatedAt: created, UpdatedAt: updated,
		NameAt: updated, DescriptionAt: created, PriceAt: updated}, nil))
	f, _, _ := db.LoadProduct(c, 5003)
	if !f.NameAt.Equal(wantUpdated) || !f.DescriptionAt.Equal(wantCreated) || !f.PriceAt.Equal(wantUpdated) {
		t.Fatalf("field times %v %v %v", f.NameAt, f.DescriptionAt, f.PriceAt)
	}
	checkTime(t, "NameAt", f.NameAt)
	must[store.PutResult](t, "put user")(db.PutUser(c, domain.User{ID: 5001, Name: "t", Email: "t@example.com", CreatedAt: created, UpdatedAt: updated}, nil))
	u, _, _ := db.LoadUser(c, 5001)
	if !u.CreatedAt.Equal(wantCreated) || !u.UpdatedAt.Equal(wantUpdated) {
		t.Fatalf("user times %v / %v", u.CreatedAt, u.UpdatedAt)
	}
	checkTime(t, "user UpdatedAt", u.UpdatedAt)
	list := must[[]domain.Product](t, "list")(db.ListProducts(c, store.Page{}))
	for _, p := range list {
		checkTime(t, "listed CreatedAt", p.CreatedAt)
	}
}
