package mssql

import (
	"strings"
	"testing"
)

// The names of what refused a value, from SQL Server's message texts, and
// neither the database's name nor the value.
func TestRejectedNamesTheCause(t *testing.T) {
	tests := []struct {
		n        int32
		msg      string
		want     string
		mustLack string
	}{
		{errCheck, `The INSERT statement conflicted with the CHECK constraint "products_name_check". The conflict occurred in database "dualsync_prod", table "dbo.products", column 'name'.`,
			`the database rejected a value: check constraint "products_name_check" on column name of table products (error 547)`, "dualsync_prod"},
		{errNotNull, `Cannot insert the value NULL into column 'email', table 'dualsync_prod.dbo.users'; column does not allow nulls. INSERT fails.`,
			"the database rejected a value: not-null constraint on column email of table users (error 515)", "dualsync_prod"},
		{errTruncatedNew, `String or binary data would be truncated in table 'dualsync_prod.dbo.products', column 'name'. Truncated value: 'hunter2'.`,
			"the database rejected a value: value too long on column name of table products (error 2628)", "hunter2"},
		{errOverflow, `Arithmetic overflow error converting numeric to data type numeric.`,
			"the database rejected a value: numeric value out of range (error 8115)", "converting"},
	}
	for _, tt := range tests {
		got := rejected(tt.n, tt.msg)
		if got != tt.want {
			t.Errorf("%d: %q, want %q", tt.n, got, tt.want)
		}
		if strings.Contains(got, tt.mustLack) {
			t.Errorf("%d: %q leaks %q", tt.n, got, tt.mustLack)
		}
	}
}
