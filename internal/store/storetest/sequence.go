package storetest

import (
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// testSequenceRestart: after sync inserts an id of this database's own
// parity, the very next Create gets exactly the id after it (the value the
// sequence was moved to), the one after that the next again, and neither a
// second Migrate nor a lower own id moves it back or skips a step. SQL
// Server's mover (which consumes the gap with sp_sequence_get_range) must
// not be off by one step.
func testSequenceRestart(t *testing.T, open Opener) {
	for _, role := range roles {
		t.Run(string(role), func(t *testing.T) {
			db := migrated(t, open, role)
			c := ctx(t)
			now := domain.Millis(time.Now())
			create := func(want int64) {
				t.Helper()
				p := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("c", "", 1)))
				if p.ID != want {
					t.Fatalf("create got id %d, want %d", p.ID, want)
				}
			}
			put := func(id int64) {
				t.Helper()
				must[store.PutResult](t, "put")(db.PutProduct(c, domain.Product{ID: id, Name: "s", Price: 1, CreatedAt: now, UpdatedAt: now}, nil))
			}
			first := must[domain.Product](t, "create")(db.CreateProduct(c, productChange("a", "", 1))).ID
			x := first + 100 // this role's parity
			put(x)
			create(x + 2) // exactly the restart value
			create(x + 4) // and on from it, one step at a time
			if err := db.Migrate(c); err != nil {
				t.Fatal(err)
			}
			create(x + 6) // Migrate after a restart neither reuses nor skips
			put(x + 10)   // a second restart, from a sequence used since the first
			create(x + 12)
			put(first + 2) // a free own id below: never backwards
			create(x + 14)
			// Users: their own sequence, moved the same way.
			u := must[domain.User](t, "create user")(db.CreateUser(c, userChange("u", "u@example.com")))
			must[store.PutResult](t, "put user")(db.PutUser(c, domain.User{ID: u.ID + 50, Name: "s", Email: "s@example.com", CreatedAt: now, UpdatedAt: now}, nil))
			if v := must[domain.User](t, "create user")(db.CreateUser(c, userChange("v", "v@example.com"))); v.ID != u.ID+52 {
				t.Fatalf("user created after a put of own id %d got %d, want %d", u.ID+50, v.ID, u.ID+52)
			}
		})
	}
}
