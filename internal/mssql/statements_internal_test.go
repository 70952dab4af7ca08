package mssql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-sql/civil"
	mssqldb "github.com/microsoft/go-mssqldb"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// The recorder stands in for go-mssqldb under database/sql to capture what
// the adapter sends: each statement's text and its arguments exactly as the
// adapter passed them (its CheckNamedValue accepts every value unchanged,
// where go-mssqldb's would then map the Go type to the declared SQL type).
// It answers queries from a script keyed by a fragment of their text. This
// tests the statements' shape only; what SQL Server does with them is for
// the contract suite (MSSQL_URL).

type stmt struct {
	query string
	args  []any
}

type recorder struct {
	mu      sync.Mutex
	stmts   []stmt
	answers []answer // first match wins
}

// answer gives the rows a query whose text contains match returns.
type answer struct {
	match string
	cols  []string
	rows  [][]driver.Value
}

func (r *recorder) record(q string, nv []driver.NamedValue) {
	args := make([]any, len(nv))
	for i, v := range nv {
		args[i] = v.Value
	}
	r.mu.Lock()
	r.stmts = append(r.stmts, stmt{q, args})
	r.mu.Unlock()
}

func (r *recorder) take() []stmt {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stmts
	r.stmts = nil
	return s
}

func (r *recorder) Connect(context.Context) (driver.Conn, error) { return &recConn{r}, nil }
func (r *recorder) Driver() driver.Driver                        { return nil }

type recConn struct{ r *recorder }

func (c *recConn) Prepare(string) (driver.Stmt, error) { return nil, errors.New("no prepare") }
func (c *recConn) Close() error                        { return nil }
func (c *recConn) Begin() (driver.Tx, error)           { return recTx{}, nil }
func (c *recConn) BeginTx(context.Context, driver.TxOptions) (driver.Tx, error) {
	return recTx{}, nil
}
func (c *recConn) CheckNamedValue(*driver.NamedValue) error { return nil }
func (c *recConn) ExecContext(_ context.Context, q string, nv []driver.NamedValue) (driver.Result, error) {
	c.r.record(q, nv)
	return driver.RowsAffected(1), nil
}
func (c *recConn) QueryContext(_ context.Context, q string, nv []driver.NamedValue) (driver.Rows, error) {
	c.r.record(q, nv)
	for _, a := range c.r.answers {
		if strings.Contains(q, a.match) {
			return &recRows{cols: a.cols, rows: a.rows}, nil
		}
	}
	return &recRows{cols: []string{"x"}}, nil
}

type recTx struct{}

func (recTx) Commit() error   { return nil }
func (recTx) Rollback() error { return nil }

type recRows struct {
	cols []string
	rows [][]driver.Value
	i    int
}

func (r *recRows) Columns() []string { return r.cols }
func (r *recRows) Close() error      { return nil }
func (r *recRows) Next(dest []driver.Value) error {
	if r.i >= len(r.rows) {
		return io.EOF
	}
	copy(dest, r.rows[r.i])
	r.i++
	return nil
}

var t0 = time.Date(2025, 3, 24, 5, 23, 54, 611_000_000, time.UTC)

func productValues(id int64) []driver.Value {
	return []driver.Value{id, "n", "d", "1.00", t0, t0, nil, int64(1), int64(0), t0, t0, t0, int64(0), int64(0)}
}

func userValues(id int64) []driver.Value {
	return []driver.Value{id, "n", "n@example.com", t0, t0, nil, int64(1), int64(0), t0, t0, int64(0), int64(0)}
}

func cols(n int) []string { return make([]string, n) }

// recorded opens the adapter on a recorder answering what its read paths
// need to reach their writes.
func recorded(t *testing.T, role store.Role, answers ...answer) (*DB, *recorder) {
	t.Helper()
	r := &recorder{answers: append(answers,
		answer{"SELECT updated_at, ver_p, ver_f, jump_from, jump_to FROM", cols(5), [][]driver.Value{{t0, int64(1), int64(0), int64(0), int64(0)}}},
		answer{"FROM dbo.products WITH (UPDLOCK, ROWLOCK)", cols(14), [][]driver.Value{productValues(7)}},
		answer{"FROM dbo.users WITH (UPDLOCK, ROWLOCK)", cols(12), [][]driver.Value{userValues(7)}},
		answer{"OUTPUT INSERTED.id", cols(1), [][]driver.Value{{int64(11)}}},
		answer{"sp_getapplock @Resource = N'dualsync-migrate'", cols(1), [][]driver.Value{{int64(0)}}},
		answer{"compatibility_level", cols(1), [][]driver.Value{{int64(160)}}},
		answer{"FROM dbo.schema_migrations", cols(1), [][]driver.Value{{int64(0)}}},
		answer{"SELECT CAST(start_value AS BIGINT)", cols(2), [][]driver.Value{{idStart(role), int64(2)}}},
		answer{"COUNT_BIG(*) FROM dbo.outbox", cols(1), [][]driver.Value{{int64(0)}}},
	)}
	db := &DB{db: sql.OpenDB(r), role: role, now: func() time.Time { return t0 }}
	t.Cleanup(db.Close)
	return db, r
}

// fixedType reports whether v is a parameter whose declared SQL type does not
// depend on its value, as go-mssqldb v1.11.2 declares it (makeParam,
// makeParamExtra, makeDecl): int64 bigint, NVarCharMax nvarchar(max),
// civil.DateTime and NullDateTime datetime2(7).
func fixedType(v any) bool {
	switch v.(type) {
	case int64, mssqldb.NVarCharMax, civil.DateTime, mssqldb.NullDateTime:
		return true
	}
	return false
}

// TestStatementParameters runs every store.DB method on the recorder and
// checks each statement sent: every parameter has a fixed declared type (no
// string declared by its length, no untyped NULL, no platform-sized int),
// and every @pN the text names is passed.
func TestStatementParameters(t *testing.T) {
	c := context.Background()
	name, price := "n", domain.Money(100)
	change := domain.ProductChange{Name: &name, Description: &name, Price: &price}
	email := "n@example.com"
	uchange := domain.UserChange{Name: &name, Email: &email}
	deleted := t0.Add(time.Second)
	p := domain.Product{ID: 7, Name: "n", Price: 1, CreatedAt: t0, UpdatedAt: t0, NameAt: t0, DescriptionAt: t0, PriceAt: t0}
	pDel := p
	pDel.ID, pDel.DeletedAt = 9, &deleted
	u := domain.User{ID: 7, Name: "n", Email: email, CreatedAt: t0, UpdatedAt: t0, NameAt: t0, EmailAt: t0}
	v := &domain.Vector{P: 1}
	calls := []struct {
		name    string
		answers []answer
		call    func(db *DB) error
	}{
		{"ListProducts", nil, func(db *DB) error { _, err := db.ListProducts(c, store.Page{After: 3, Limit: 5}); return err }},
		{"GetProduct", nil, func(db *DB) error { _, err := db.GetProduct(c, 3); return ignoreNotFound(err) }},
		{"LoadProduct", nil, func(db *DB) error { _, _, err := db.LoadProduct(c, 3); return err }},
		{"LoadProducts", nil, func(db *DB) error { _, err := db.LoadProducts(c, []int64{3, 5}); return err }},
		{"CreateProduct", nil, func(db *DB) error { _, err := db.CreateProduct(c, change); return err }},
		{"UpdateProduct", nil, func(db *DB) error { _, err := db.UpdateProduct(c, 7, change); return err }},
		{"DeleteProduct", nil, func(db *DB) error { return db.DeleteProduct(c, 7) }},
		{"PutProduct absent (insert, own id)", nil, func(db *DB) error { _, err := db.PutProduct(c, p, nil); return err }},
		{"PutProduct tombstone over a row (update)", []answer{{"SELECT ver_p, ver_f, deleted_at FROM", cols(3), [][]driver.Value{{int64(1), int64(0), nil}}}},
			func(db *DB) error { _, err := db.PutProduct(c, pDel, v); return err }},
		{"PutProducts (update and insert)", []answer{{"INNER LOOP JOIN dbo.products", cols(4), [][]driver.Value{{int64(7), int64(1), int64(0), true}}}},
			func(db *DB) error {
				_, err := db.PutProducts(c, []store.ProductPut{{Product: p, Expect: v}, {Product: pDel, Expect: nil}})
				return err
			}},
		{"ListUsers", nil, func(db *DB) error { _, err := db.ListUsers(c, store.Page{}); return err }},
		{"GetUser", nil, func(db *DB) error { _, err := db.GetUser(c, 3); return ignoreNotFound(err) }},
		{"LoadUser", nil, func(db *DB) error { _, _, err := db.LoadUser(c, 3); return err }},
		{"CreateUser", nil, func(db *DB) error { _, err := db.CreateUser(c, uchange); return err }},
		{"UpdateUser", nil, func(db *DB) error { _, err := db.UpdateUser(c, 7, uchange); return err }},
		{"DeleteUser", nil, func(db *DB) error { return db.DeleteUser(c, 7) }},
		{"PutUser", nil, func(db *DB) error { _, err := db.PutUser(c, u, nil); return err }},
		{"PutUsers (swap)", []answer{{"SELECT ver_p, ver_f, deleted_at FROM dbo.users", cols(3), [][]driver.Value{{int64(1), int64(0), nil}}}},
			func(db *DB) error {
				w := u
				w.ID = 9
				_, err := db.PutUsers(c, []store.UserPut{{User: u, Expect: v}, {User: w, Expect: v}})
				return err
			}},
		{"UserByEmail", nil, func(db *DB) error { _, _, err := db.UserByEmail(c, "A@example.com"); return err }},
		{"IDs", nil, func(db *DB) error { _, err := db.IDs(c, domain.EntityUser, 0, 10); return err }},
		{"PendingOutbox", nil, func(db *DB) error { _, err := db.PendingOutbox(c, t0, t0, 10); return err }},
		{"MarkOutboxSent", nil, func(db *DB) error {
			return db.MarkOutboxSent(c, domain.EntityProduct, []store.OutboxMark{{ID: 3, UpTo: 2}}, t0)
		}},
		{"AckOutbox", nil, func(db *DB) error { return db.AckOutbox(c, domain.EntityUser, []store.OutboxMark{{ID: 3, UpTo: 2}}) }},
		{"OutboxDepth", nil, func(db *DB) error { _, err := db.OutboxDepth(c); return err }},
		{"MaxID", []answer{{"SELECT MAX(id)", cols(1), [][]driver.Value{{int64(41)}}}},
			func(db *DB) error { _, err := db.MaxID(c, domain.EntityProduct, 1); return err }},
		{"AddMark", []answer{{"OUTPUT INSERTED.n", cols(1), [][]driver.Value{{int64(100)}}}},
			func(db *DB) error { _, err := db.AddMark(c); return err }},
		{"HasMark", []answer{{"FROM dbo.sync_marks WHERE", cols(1), [][]driver.Value{{int64(1)}}}},
			func(db *DB) error { _, err := db.HasMark(c, store.Mark{N: 3, Token: "t"}); return err }},
		{"Peer", []answer{{"FROM dbo.sync_peer WHERE", cols(3), [][]driver.Value{{int64(3), "t", nil}}}},
			func(db *DB) error { _, err := db.Peer(c, store.RolePrimary); return err }},
		{"SetPeer (insert)", nil, func(db *DB) error {
			_, err := db.SetPeer(c, store.RolePrimary, store.Peer{}, store.Peer{Seen: store.Mark{N: 3, Token: "t"}, RegressedAt: t0})
			return err
		}},
		{"SetPeer (update)", nil, func(db *DB) error {
			_, err := db.SetPeer(c, store.RolePrimary, store.Peer{Seen: store.Mark{N: 3, Token: "t"}}, store.Peer{Seen: store.Mark{N: 4, Token: "u"}})
			return err
		}},
		{"AdvanceSequence", nil, func(db *DB) error { return db.AdvanceSequence(c, domain.EntityProduct, 41) }},
		{"PurgeCandidates", nil, func(db *DB) error {
			_, err := db.PurgeCandidates(c, domain.EntityProduct, 0, t0, 10)
			return err
		}},
		{"PurgeTombstones", nil, func(db *DB) error {
			_, err := db.PurgeTombstones(c, domain.EntityUser, []store.Tombstone{{ID: 3, Ver: domain.Vector{P: 1}}}, t0)
			return err
		}},
		{"Migrate", nil, func(db *DB) error { return db.Migrate(c) }},
		{"Ping", []answer{{"SELECT 1", cols(1), [][]driver.Value{{int64(1)}}}}, func(db *DB) error { return db.Ping(c) }},
	}
	param := regexp.MustCompile(`@p(\d+)\b`)
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			db, r := recorded(t, store.RolePrimary, tc.answers...)
			if err := tc.call(db); err != nil {
				t.Fatalf("call: %v", err)
			}
			stmts := r.take()
			if len(stmts) == 0 {
				t.Fatal("no statement sent")
			}
			for _, s := range stmts {
				for i, a := range s.args {
					if !fixedType(a) {
						t.Errorf("parameter @p%d is %T (%v), whose declared type depends on its value or platform, in %q", i+1, a, a, s.query)
					}
				}
				for _, m := range param.FindAllStringSubmatch(s.query, -1) {
					var n int
					fmt.Sscan(m[1], &n)
					if n > len(s.args) {
						t.Errorf("%q names @p%d but gets %d parameters", s.query, n, len(s.args))
					}
				}
			}
		})
	}
}

func ignoreNotFound(err error) error {
	if domain.IsKind(err, domain.KindNotFound) {
		return nil
	}
	return err
}

// The plan cache holds one plan per statement text and parameter list: a
// list's length must change neither. Each batch method sends the same
// statements whatever the number of items.
func TestListStatementsDoNotVary(t *testing.T) {
	c := context.Background()
	product := func(id int64) domain.Product {
		return domain.Product{ID: id, Name: strings.Repeat("x", int(id%7)+1), Price: domain.Money(id), CreatedAt: t0, UpdatedAt: t0, NameAt: t0, DescriptionAt: t0, PriceAt: t0}
	}
	lock := func(ids ...int64) answer {
		a := answer{"INNER LOOP JOIN dbo.products", cols(4), nil}
		for _, id := range ids {
			a.rows = append(a.rows, []driver.Value{id, int64(1), int64(0), true})
		}
		return a
	}
	ids := func(n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = int64(2*i + 3)
		}
		return out
	}
	puts := func(n int) []store.ProductPut {
		var out []store.ProductPut
		for i := range n {
			// Half update rows the lock read returns, half insert new ones.
			id := int64(2*i + 3)
			if i%2 == 0 {
				out = append(out, store.ProductPut{Product: product(id), Expect: &domain.Vector{P: 1}})
			} else {
				out = append(out, store.ProductPut{Product: product(id + 1000)})
			}
		}
		return out
	}
	marks := func(n int) []store.OutboxMark {
		out := make([]store.OutboxMark, n)
		for i := range out {
			out[i] = store.OutboxMark{ID: int64(n - i), UpTo: int64(i)}
		}
		return out
	}
	tests := []struct {
		name   string
		sizes  []int
		answer func(n int) []answer
		call   func(db *DB, n int) error
	}{
		{"LoadProducts", []int{1, 3, 250, 1200}, nil, func(db *DB, n int) error { _, err := db.LoadProducts(c, ids(n)); return err }},
		{"PutProducts", []int{2, 6, 100}, func(n int) []answer {
			var locked []int64
			for i, p := range puts(n) {
				if i%2 == 0 {
					locked = append(locked, p.Product.ID)
				}
			}
			return []answer{lock(locked...)}
		}, func(db *DB, n int) error { _, err := db.PutProducts(c, puts(n)); return err }},
		{"MarkOutboxSent", []int{1, 4, 900}, nil, func(db *DB, n int) error { return db.MarkOutboxSent(c, domain.EntityProduct, marks(n), t0) }},
		{"AckOutbox", []int{1, 4, 900}, nil, func(db *DB, n int) error { return db.AckOutbox(c, domain.EntityProduct, marks(n)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var first []stmt
			for _, n := range tc.sizes {
				var answers []answer
				if tc.answer != nil {
					answers = tc.answer(n)
				}
				db, r := recorded(t, store.RoleFallback, answers...)
				if err := tc.call(db, n); err != nil {
					t.Fatalf("%d items: %v", n, err)
				}
				got := r.take()
				if first == nil {
					first = got
					continue
				}
				if len(got) != len(first) {
					t.Fatalf("%d items: %d statements, %d items: %d", tc.sizes[0], len(first), n, len(got))
				}
				for i := range got {
					if got[i].query != first[i].query {
						t.Errorf("%d items: statement %d differs from %d items':\n%s\n---\n%s", n, i, tc.sizes[0], got[i].query, first[i].query)
					}
					if len(got[i].args) != len(first[i].args) {
						t.Errorf("%d items: statement %d has %d parameters, %d with %d items", n, i, len(got[i].args), len(first[i].args), tc.sizes[0])
					}
					for j := range got[i].args {
						if reflect.TypeOf(got[i].args[j]) != reflect.TypeOf(first[i].args[j]) {
							t.Errorf("%d items: statement %d parameter %d is %T, %T with %d items", n, i, j+1, got[i].args[j], first[i].args[j], tc.sizes[0])
						}
					}
				}
			}
		})
	}
}

// Each JSON parameter must carry exactly the fields its OPENJSON WITH
// clause reads (a misspelt path would read NULL, not fail).
func TestJSONParametersMatchOpenJSON(t *testing.T) {
	path := regexp.MustCompile(`'\$\.(\w+)'`)
	tests := []struct {
		name string
		sql  string
		row  any
	}{
		{"product rows", productRowsJSON, productRow{}},
		{"outbox marks", marksJSON, markRow{}},
	}
	for _, tc := range tests {
		var paths []string
		for _, m := range path.FindAllStringSubmatch(tc.sql, -1) {
			paths = append(paths, m[1])
		}
		b, err := json.Marshal(tc.row)
		if err != nil {
			t.Fatal(err)
		}
		var fields map[string]any
		if err := json.Unmarshal(b, &fields); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(func(yield func(string) bool) {
			for k := range fields {
				if !yield(k) {
					return
				}
			}
		})
		slices.Sort(paths)
		if !slices.Equal(keys, paths) {
			t.Errorf("%s: JSON fields %v, OPENJSON reads %v", tc.name, keys, paths)
		}
	}
	// Times reach OPENJSON as style 126 text, in UTC, to the millisecond.
	loc := time.FixedZone("UTC+5", 5*3600)
	row := rowOf(domain.Product{ID: 1, Name: "<a&b>", Price: 1234, CreatedAt: time.Date(2025, 3, 24, 10, 23, 54, 611_999_999, loc)})
	if row.CreatedAt != "2025-03-24T05:23:54.611" || row.DeletedAt != nil || row.Price != "12.34" {
		t.Errorf("row %+v", row)
	}
	var back productRow
	if err := json.Unmarshal([]byte(jsonParam([]productRow{row})[1:len(jsonParam([]productRow{row}))-1]), &back); err != nil || back.Name != "<a&b>" {
		t.Errorf("name did not survive JSON: %q %v", back.Name, err)
	}
}

// A batch naming an id twice is refused before anything is sent.
func TestPutBatchesRefuseDuplicateIDsBeforeSending(t *testing.T) {
	c := context.Background()
	db, r := recorded(t, store.RolePrimary)
	p := domain.Product{ID: 5, Name: "a", Price: 1, CreatedAt: t0, UpdatedAt: t0}
	q := p
	q.ID = 7
	_, err := db.PutProducts(c, []store.ProductPut{{Product: p}, {Product: q}, {Product: p}})
	if !domain.IsKind(err, domain.KindInvalid) {
		t.Fatalf("PutProducts with an id twice: %v, want Invalid", err)
	}
	u := domain.User{ID: 5, Name: "a", Email: "a@example.com", CreatedAt: t0, UpdatedAt: t0}
	_, err = db.PutUsers(c, []store.UserPut{{User: u}, {User: u}})
	if !domain.IsKind(err, domain.KindInvalid) {
		t.Fatalf("PutUsers with an id twice: %v, want Invalid", err)
	}
	if s := r.take(); len(s) != 0 {
		t.Fatalf("a refused batch sent %d statements: %+v", len(s), s)
	}
}

// The sequence mover's batch: built from constants, it only consumes
// values (NEXT VALUE FOR, then sp_sequence_get_range up to the id), never
// restarts the sequence, and reads last_used_value (SQL Server 2017+) only
// through dynamic SQL guarded by the column existing, so SQL Server 2016
// compiles it.
func TestSequenceSQL(t *testing.T) {
	for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		q, err := sequenceSQL(e)
		if err != nil {
			t.Fatal(err)
		}
		seq := "dbo." + string(e) + "s_id_seq"
		for _, want := range []string{
			"NEXT VALUE FOR " + seq + ";", // the real next value, drawn under the lock
			"IF @next < @want",            // consume only forward, up to the id
			"EXEC sp_sequence_get_range @sequence_name = N'" + seq + "', @range_size = @size,",
			"@range_size = @size,",
			"@size BIGINT = (@want - @next + 1) / 2", // increment 2: the values from @next+2 through @want
			"AND @want < CAST(current_value AS BIGINT)",
			"@LockOwner = N'Transaction'",
			"IF @r = -3 THROW 51205",
			"IF @r < 0 THROW 50001",
			"WHERE object_id = OBJECT_ID(N'sys.sequences') AND name = N'last_used_value'",
		} {
			if !strings.Contains(q, want) {
				t.Errorf("%s: the mover lacks %q", e, want)
			}
		}
		for _, banned := range []string{"ALTER SEQUENCE", "RESTART", "READCOMMITTEDLOCK"} {
			if strings.Contains(q, banned) {
				t.Errorf("%s: the mover uses %s", e, banned)
			}
		}
		// last_used_value appears only inside the dynamic SQL and the guard.
		static := regexp.MustCompile(`(?s)EXEC sp_executesql N'.*?',`).ReplaceAllString(q, "")
		if strings.Count(static, "last_used_value") != 1 {
			t.Errorf("%s: last_used_value outside the guarded dynamic SQL:\n%s", e, static)
		}
		if strings.Count(q, "BEGIN") != strings.Count(q, "END")-strings.Count(q, "END;") || strings.Count(q, "NEXT VALUE FOR") != 1 {
			t.Errorf("%s: unbalanced batch or more than one draw:\n%s", e, q)
		}
		if i, j := strings.Index(q, "sp_getapplock"), strings.Index(q, "NEXT VALUE FOR"); i < 0 || j < i {
			t.Errorf("%s: the value is drawn outside the application lock", e)
		}
		if i, j := strings.Index(q, "NEXT VALUE FOR"), strings.Index(q, "sp_sequence_get_range"); j < i {
			t.Errorf("%s: the range is consumed before the next value is known", e)
		}
	}
	if _, err := sequenceSQL(domain.Entity("order")); err == nil {
		t.Error("unknown entity accepted")
	}
}

// The mover's arithmetic, as the batch computes it: after drawing next and
// consuming size more values (increment 2), the sequence's next value is
// above want, and no more than one step beyond it.
func TestSequenceRangeSize(t *testing.T) {
	for _, tc := range []struct{ next, want int64 }{
		{1, 3}, {1, 101}, {3, 5}, {2, 4}, {2, 1_100_000_000_002}, {7, 9},
	} {
		size := (tc.want - tc.next + 1) / 2 // as in sequenceSQL
		after := tc.next + 2*size + 2       // the value a create gets next
		if after <= tc.want || after > tc.want+2 {
			t.Errorf("next %d, want %d: size %d leaves the sequence at %d", tc.next, tc.want, size, after)
		}
	}
}

// Every statement that writes or locks rows listed in a JSON parameter is
// driven from the JSON: OPENJSON first, then each table sought by key
// (INNER LOOP JOIN, FORCESEEK). A scan plan would take update locks on every
// row read and deadlock two batches, or a purge and API writes.
func TestJSONDrivenWritesSeek(t *testing.T) {
	c := context.Background()
	p := domain.Product{ID: 7, Name: "n", Price: 1, CreatedAt: t0, UpdatedAt: t0, NameAt: t0, DescriptionAt: t0, PriceAt: t0}
	q := p
	q.ID = 9
	marks := []store.OutboxMark{{ID: 3, UpTo: 2}}
	calls := []struct {
		name    string
		answers []answer
		call    func(db *DB) error
		want    int // JSON-driven writing or locking statements expected
	}{
		{"PutProducts", []answer{{"INNER LOOP JOIN dbo.products", cols(4), [][]driver.Value{{int64(7), int64(1), int64(0), true}}}},
			func(db *DB) error {
				_, err := db.PutProducts(c, []store.ProductPut{{Product: p, Expect: &domain.Vector{P: 1}}, {Product: q}})
				return err
			}, 2}, // the lock read and the UPDATE (the INSERT reads no table)
		{"PurgeTombstones", nil, func(db *DB) error {
			_, err := db.PurgeTombstones(c, domain.EntityProduct, []store.Tombstone{{ID: 3, Ver: domain.Vector{P: 1}}}, t0)
			return err
		}, 2},
		{"MarkOutboxSent", nil, func(db *DB) error { return db.MarkOutboxSent(c, domain.EntityProduct, marks, t0) }, 1},
		{"AckOutbox", nil, func(db *DB) error { return db.AckOutbox(c, domain.EntityUser, marks) }, 1},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			db, r := recorded(t, store.RolePrimary, tc.answers...)
			if err := tc.call(db); err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, s := range r.take() {
				q := strings.Join(strings.Fields(s.query), " ")
				writes := strings.HasPrefix(q, "UPDATE ") || strings.HasPrefix(q, "DELETE ") || strings.Contains(q, "UPDLOCK")
				if !writes || !strings.Contains(q, "OPENJSON(") {
					continue
				}
				n++
				for _, p := range seekProblems(q) {
					t.Errorf("%s\n%s", p, q)
				}
			}
			if n != tc.want {
				t.Errorf("%d JSON-driven writing statements, want %d", n, tc.want)
			}
		})
	}
	// The rule itself catches the forms it exists for.
	for _, bad := range []string{
		"UPDATE t SET a = j.a FROM dbo.products AS t INNER JOIN OPENJSON(@p1) WITH (id BIGINT '$.id') AS j ON t.id = j.id",
		"DELETE t FROM OPENJSON(@p1) WITH (id BIGINT '$.id') AS j INNER LOOP JOIN dbo.products AS t ON t.id = j.id",
		"DELETE t FROM OPENJSON(@p1) WITH (id BIGINT '$.id') AS j INNER LOOP JOIN dbo.products AS t WITH (FORCESEEK) ON t.id = j.id WHERE NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WITH (UPDLOCK, HOLDLOCK) WHERE o.entity_id = t.id)",
	} {
		if len(seekProblems(bad)) == 0 {
			t.Errorf("seekProblems accepts %q", bad)
		}
	}
}

var tableRef = regexp.MustCompile(`dbo\.\w+ AS \w+( WITH \(([^)]*)\))?`)

// seekProblems lists what keeps q (whitespace collapsed) from being driven
// from its JSON with every table sought.
func seekProblems(q string) []string {
	var out []string
	refs := tableRef.FindAllStringSubmatchIndex(q, -1)
	if len(refs) == 0 {
		return []string{"no table reference"}
	}
	if j := strings.Index(q, "OPENJSON("); j < 0 || j > refs[0][0] {
		out = append(out, "a table comes before OPENJSON")
	}
	if strings.Contains(q, " INNER JOIN ") || strings.Contains(q, " JOIN dbo.") && !strings.Contains(q, "INNER LOOP JOIN dbo.") {
		out = append(out, "a join without LOOP: the JSON does not drive it")
	}
	for _, m := range refs {
		ref := q[m[0]:m[1]]
		if m[4] < 0 || !strings.Contains(q[m[4]:m[5]], "FORCESEEK") {
			out = append(out, ref+" is not FORCESEEK")
		}
	}
	return out
}
