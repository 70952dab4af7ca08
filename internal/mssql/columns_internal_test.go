package mssql

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// schemaColumns applies the embedded migrations' CREATE TABLE and ALTER
// COLUMN statements to a model: "table.column" -> type, upper case.
func schemaColumns(t *testing.T) map[string]string {
	t.Helper()
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	createTable := regexp.MustCompile(`(?is)CREATE\s+TABLE\s+dbo\.(\w+)\s*\((.*?)\n\);`)
	columnDef := regexp.MustCompile(`(?m)^\s*(\w+)\s+([A-Za-z]+(?:\s*\([^)]*\))?)`)
	alter := regexp.MustCompile(`(?i)ALTER\s+TABLE\s+dbo\.(\w+)\s+ALTER\s+COLUMN\s+(\w+)\s+([A-Za-z]+(?:\s*\([^)]*\))?)`)
	// ADD takes one column or a comma-separated list, up to the statement's end.
	addCols := regexp.MustCompile(`(?is)ALTER\s+TABLE\s+dbo\.(\w+)\s+ADD\s+(.*?)(?:;|\nGO\b)`)
	dropCol := regexp.MustCompile(`(?i)ALTER\s+TABLE\s+dbo\.(\w+)\s+DROP\s+COLUMN\s+(\w+)`)
	cols := map[string]string{}
	for _, name := range names {
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		text := regexp.MustCompile(`--[^\n]*`).ReplaceAllString(string(body), "")
		for _, m := range createTable.FindAllStringSubmatch(text, -1) {
			for _, c := range columnDef.FindAllStringSubmatch(m[2], -1) {
				if kw := strings.ToUpper(c[1]); kw == "CONSTRAINT" || kw == "PRIMARY" || kw == "INDEX" {
					continue
				}
				cols[m[1]+"."+c[1]] = strings.ToUpper(c[2])
			}
		}
		for _, m := range addCols.FindAllStringSubmatch(text, -1) {
			for _, def := range strings.Split(m[2], ",") {
				if c := columnDef.FindStringSubmatch(def); c != nil {
					cols[m[1]+"."+c[1]] = strings.ToUpper(c[2])
				}
			}
		}
		for _, m := range alter.FindAllStringSubmatch(text, -1) {
			cols[m[1]+"."+m[2]] = strings.ToUpper(m[3])
		}
		for _, m := range dropCol.FindAllStringSubmatch(text, -1) {
			delete(cols, m[1]+"."+m[2])
		}
	}
	return cols
}

// go-mssqldb v1.11.2 sends a Go string parameter as NVARCHAR (makeStrParam).
// Compared with a VARCHAR column under a SQL collation, the column side is
// converted and its index cannot be sought: so every character column the
// adapter stores must be NVARCHAR or NCHAR, and every column the adapter
// compares with a parameter must be one the migrations create.
func TestColumnTypesMatchParameters(t *testing.T) {
	cols := schemaColumns(t)
	for _, want := range []string{"outbox.entity", "users.email", "products.name", "outbox.counter", "users.email_key"} {
		if _, ok := cols[want]; !ok {
			t.Fatalf("the schema model lacks %s (parser out of step with the migrations): %v", want, cols)
		}
	}
	for col, typ := range cols {
		if regexp.MustCompile(`^(VAR)?CHAR\b|^TEXT\b`).MatchString(typ) {
			t.Errorf("%s is %s: a Go string parameter (NVARCHAR) compared with it converts the column and scans; use N%s", col, typ, typ)
		}
	}
	// Every "column <op> @pN" in the adapter's SQL names a known column.
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for col := range cols {
		known[col[strings.Index(col, ".")+1:]] = true
	}
	// A column, not a T-SQL variable (@next) or a number (id % 2 = @p2).
	cmp := regexp.MustCompile(`(?:^|[^@\w])([A-Za-z_]\w*)\s*(?:=|<=|>=|<|>|<>)\s*(?:CAST\(\s*)?@p\d+`)
	seen := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range cmp.FindAllStringSubmatch(string(src), -1) {
			seen++
			switch m[1] {
			case "name", "version", "Resource", "LockMode", "LockOwner", "LockTimeout":
				// name: sys.sequences.name (sysname = NVARCHAR), products.name;
				// version: schema_migrations.version (NVARCHAR);
				// the rest are sp_getapplock's named arguments.
				continue
			}
			if !known[m[1]] {
				t.Errorf("%s compares %s with a parameter; the schema model does not know that column", f, m[1])
			}
		}
	}
	if seen == 0 {
		t.Fatal("no comparisons with parameters found: the scan is broken")
	}
}
