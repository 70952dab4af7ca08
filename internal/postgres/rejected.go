package postgres

import (
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// rejected is the client-safe message of a value the database refused: it
// says which constraint, column and table refused it, from the error's
// structured fields only. Those are names from our own schema; the
// server's message text and detail are left out, since they can quote the
// value or the whole row, and nothing about the connection is in them.
func rejected(pe *pgconn.PgError) string {
	var what string
	switch pe.Code {
	case "23514":
		what = "check constraint"
	case "23502":
		what = "not-null constraint"
	case "22001":
		what = "value too long"
	case "22003":
		what = "numeric value out of range"
	case "22P02", "22007", "22008":
		what = "invalid value for its type"
	case "22021":
		what = "invalid character encoding"
	default:
		what = "invalid value"
	}
	var b strings.Builder
	b.WriteString("the database rejected a value: ")
	b.WriteString(what)
	if pe.ConstraintName != "" {
		b.WriteString(` "` + pe.ConstraintName + `"`)
	}
	if pe.ColumnName != "" {
		b.WriteString(" on column " + pe.ColumnName)
	}
	if pe.TableName != "" {
		b.WriteString(" of table " + pe.TableName)
	}
	b.WriteString(" (SQLSTATE " + pe.Code + ")")
	return b.String()
}
