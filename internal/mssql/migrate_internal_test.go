package mssql

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"dualsync/internal/store"
)

// Without a server, check what can be checked of the embedded T-SQL: it
// splits into batches, the role's id start is substituted, and it holds no
// PostgreSQL-isms or positional parameters.
func TestEmbeddedMigrations(t *testing.T) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded migrations: %v", err)
	}
	forbidden := regexp.MustCompile(`(?i)\$[0-9]|\bserial\b|\btimestamptz\b|\bON CONFLICT\b|\bIF NOT EXISTS\s+\w+\s*\(`)
	for _, name := range names {
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(body), "{{id_start}}") && name == "migrations/001_init.sql" {
			t.Fatalf("%s lacks the {{id_start}} placeholder", name)
		}
		for _, role := range []store.Role{store.RolePrimary, store.RoleFallback} {
			script := strings.NewReplacer("{{id_start}}", map[store.Role]string{store.RolePrimary: "1", store.RoleFallback: "2"}[role],
				"{{own_ver}}", ownVer(role)).Replace(string(body))
			batches := Batches(script)
			if len(batches) < 1 {
				t.Fatalf("%s: %d batches", name, len(batches))
			}
			for i, b := range batches {
				if strings.Contains(b, "{{") {
					t.Errorf("%s batch %d keeps a placeholder", name, i)
				}
				if forbidden.MatchString(b) {
					t.Errorf("%s batch %d has PostgreSQL syntax: %s", name, i, forbidden.FindString(b))
				}
			}
		}
	}
	if idStart(store.RolePrimary)%2 != 1 || idStart(store.RoleFallback)%2 != 0 {
		t.Fatal("id parity per role is wrong")
	}
}
