package mssql

import (
	"regexp"
	"strconv"
	"strings"
)

// SQL Server states which constraint, table and column refused a value only
// in its message text, e.g. 'The INSERT statement conflicted with the CHECK
// constraint "products_name_check". The conflict occurred in database "db",
// table "dbo.products", column 'name'.' and, for truncation, 'String or
// binary data would be truncated in table 'db.dbo.products', column 'name'.
// Truncated value: '...'.' (learn.microsoft.com, database engine errors 547,
// 515, 2628). Only the names are taken from it: never the database name or
// the value.
var (
	msConstraint = regexp.MustCompile(`constraint "([^"]{1,128})"`)
	msColumn     = regexp.MustCompile(`column '([^']{1,128})'`)
	msTable      = regexp.MustCompile(`table ["']([^"']{1,400})["']`)
)

// rejected is the client-safe message of a value SQL Server refused (error
// number n, message msg).
func rejected(n int32, msg string) string {
	var what string
	switch n {
	case errCheck:
		what = "constraint"
		if strings.Contains(msg, "CHECK constraint") {
			what = "check constraint"
		} else if strings.Contains(msg, "FOREIGN KEY") {
			what = "foreign key constraint"
		}
	case errNotNull:
		what = "not-null constraint"
	case errOverflow:
		what = "numeric value out of range"
	case errTruncated, errTruncatedNew:
		what = "value too long"
	default:
		what = "invalid value"
	}
	var b strings.Builder
	b.WriteString("the database rejected a value: ")
	b.WriteString(what)
	if m := msConstraint.FindStringSubmatch(msg); m != nil {
		b.WriteString(` "` + m[1] + `"`)
	}
	if m := msColumn.FindStringSubmatch(msg); m != nil {
		b.WriteString(" on column " + m[1])
	}
	if m := msTable.FindStringSubmatch(msg); m != nil {
		// Only the table's own name: the first parts name the database.
		parts := strings.Split(m[1], ".")
		b.WriteString(" of table " + parts[len(parts)-1])
	}
	b.WriteString(" (error " + strconv.Itoa(int(n)) + ")")
	return b.String()
}
