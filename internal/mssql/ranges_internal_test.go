package mssql

import (
	"regexp"
	"strings"
	"testing"
)

// No SQL Server runs here: the range reads are pinned by their text. Each
// must select exactly the columns the single-row load selects (so the scan
// and the comparison see the same row), bound the id as (after, upTo] with
// the parameters in that order, include tombstones (no deleted_at filter),
// and come back ordered by id. The contract suite (storetest Ranges) runs
// them against a server when MSSQL_URL is set.
func TestRangeQueries(t *testing.T) {
	cols := schemaColumns(t)
	tests := []struct {
		name, query, cols, table string
	}{
		{"products", productsInRange, productCols, "products"},
		{"users", usersInRange, userCols, "users"},
	}
	shape := regexp.MustCompile(`^SELECT (.+) FROM dbo\.(\w+) WHERE id > @p1 AND id <= @p2 ORDER BY id$`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := shape.FindStringSubmatch(tc.query)
			if m == nil {
				t.Fatalf("query %q: want SELECT <cols> FROM dbo.%s WHERE id > @p1 AND id <= @p2 ORDER BY id", tc.query, tc.table)
			}
			if m[1] != tc.cols {
				t.Errorf("columns %q, want the load's %q", m[1], tc.cols)
			}
			if m[2] != tc.table {
				t.Errorf("table %q, want %q", m[2], tc.table)
			}
			if strings.Contains(tc.query, "deleted_at IS") {
				t.Error("the range read filters tombstones; it must include them")
			}
			// Every column it reads exists in the migrated schema.
			plain := regexp.MustCompile(`CONVERT\(VARCHAR\(20\), (\w+)\)`).ReplaceAllString(tc.cols, "$1")
			for _, c := range strings.Split(plain, ",") {
				c = strings.TrimSpace(c)
				if _, ok := cols[tc.table+"."+c]; !ok {
					t.Errorf("column %s.%s is not in the migrations", tc.table, c)
				}
			}
		})
	}
}
