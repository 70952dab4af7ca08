package postgres

import (
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"dualsync/internal/domain"
)

// A refused value's message names the constraint, column and table, and
// never the value, the row or the server's own text.
func TestRejectedNamesTheCause(t *testing.T) {
	tests := []struct {
		pe   pgconn.PgError
		want string
	}{
		{pgconn.PgError{Code: "23514", ConstraintName: "products_name_check", TableName: "products",
			Message: `new row for relation "products" violates check constraint "products_name_check"`, Detail: "Failing row contains (5, secret-name)."},
			`the database rejected a value: check constraint "products_name_check" of table products (SQLSTATE 23514)`},
		{pgconn.PgError{Code: "23502", ColumnName: "name", TableName: "users", Detail: "Failing row contains (1, null, a@b.c)."},
			"the database rejected a value: not-null constraint on column name of table users (SQLSTATE 23502)"},
		{pgconn.PgError{Code: "22001", Message: "value too long for type character varying(200)"},
			"the database rejected a value: value too long (SQLSTATE 22001)"},
		{pgconn.PgError{Code: "22P02", Message: `invalid input syntax for type integer: "password=hunter2"`},
			"the database rejected a value: invalid value for its type (SQLSTATE 22P02)"},
	}
	for _, tt := range tests {
		err := Classify(&tt.pe, false)
		var de *domain.Error
		if !domain.IsKind(err, domain.KindInvalid) || !asDomain(err, &de) || de.Message != tt.want {
			t.Errorf("%s: %v, want invalid %q", tt.pe.Code, err, tt.want)
			continue
		}
		for _, leak := range []string{"secret-name", "hunter2", "Failing row", "violates"} {
			if strings.Contains(de.Message, leak) {
				t.Errorf("%s: the message %q leaks %q", tt.pe.Code, de.Message, leak)
			}
		}
	}
}

func asDomain(err error, de **domain.Error) bool {
	e, ok := err.(*domain.Error)
	*de = e
	return ok
}
