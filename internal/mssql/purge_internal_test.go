package mssql

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// SQL Server cannot run here: these pin the purge statements' text, which
// the contract suite (storetest) runs for real only against PostgreSQL.
func TestPurgeSQL(t *testing.T) {
	before := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	ts := []store.Tombstone{{ID: 7, Ver: domain.Vector{P: 3, F: 1}}, {ID: 9, Ver: domain.Vector{P: 0, F: 2}}}
	lock, del, args := purgeSQL("dbo.products", domain.EntityProduct, ts, before)

	wantArgs := []any{"product", dt(before), int64(7), int64(3), int64(1), int64(9), int64(0), int64(2)}
	if len(args) != len(wantArgs) {
		t.Fatalf("args = %v, want %v", args, wantArgs)
	}
	for i := range args {
		if args[i] != wantArgs[i] {
			t.Errorf("arg @p%d = %#v, want %#v", i+1, args[i], wantArgs[i])
		}
	}
	for _, tc := range []struct{ name, sql string }{{"lock", lock}, {"delete", del}} {
		// Every placeholder names a parameter that is passed, and no value
		// is spelled into the text.
		for _, m := range regexp.MustCompile(`@p(\d+)`).FindAllStringSubmatch(tc.sql, -1) {
			var n int
			for _, c := range m[1] {
				n = n*10 + int(c-'0')
			}
			if n < 1 || n > len(args) {
				t.Errorf("%s names @p%d, only %d parameters", tc.name, n, len(args))
			}
		}
		if regexp.MustCompile(`[=<>(,]\s*\d`).MatchString(tc.sql) {
			t.Errorf("%s has a literal number: %s", tc.name, tc.sql)
		}
	}
	norm := strings.Join(strings.Fields(lock), " ")
	if norm != "SELECT id FROM dbo.products WITH (UPDLOCK, HOLDLOCK, ROWLOCK) WHERE id IN (@p3, @p6)" {
		t.Errorf("lock = %q", norm)
	}
	norm = strings.Join(strings.Fields(del), " ")
	for _, want := range []string{
		"DELETE t OUTPUT DELETED.id FROM dbo.products AS t JOIN (VALUES (@p3, @p4, @p5), (@p6, @p7, @p8)) AS m(id, ver_p, ver_f)",
		"ON t.id = m.id AND t.ver_p = m.ver_p AND t.ver_f = m.ver_f",
		"WHERE t.deleted_at IS NOT NULL AND t.deleted_at < @p2",
		"AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WITH (UPDLOCK, HOLDLOCK) WHERE o.entity = @p1 AND o.entity_id = t.id)",
	} {
		if !strings.Contains(norm, want) {
			t.Errorf("delete lacks %q:\n%s", want, norm)
		}
	}
	// A full chunk stays below SQL Server's 2,100 parameters.
	_, _, args = purgeSQL("dbo.users", domain.EntityUser, make([]store.Tombstone, stmtChunk), before)
	if len(args) >= 2100 {
		t.Errorf("a chunk of %d tombstones takes %d parameters", stmtChunk, len(args))
	}
	cand := strings.Join(strings.Fields(purgeCandidatesSQL("dbo.users")), " ")
	if cand != "SELECT TOP (@p4) t.id, t.ver_p, t.ver_f FROM dbo.users AS t WHERE t.id > @p1 AND t.deleted_at IS NOT NULL AND t.deleted_at < @p2 "+
		"AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WHERE o.entity = @p3 AND o.entity_id = t.id) ORDER BY t.id" {
		t.Errorf("candidates = %q", cand)
	}
}
