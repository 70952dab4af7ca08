package mssql

import (
	"encoding/json"
	"time"

	"github.com/golang-sql/civil"
	mssqldb "github.com/microsoft/go-mssqldb"

	"dualsync/internal/domain"
)

// Parameters have fixed declared types, so one statement's text and
// parameter list are the same whatever the values, and SQL Server caches one
// plan per statement (go-mssqldb issue 300). go-mssqldb v1.11.2 declares
// each parameter from its Go type (makeParam, makeDecl in mssql.go and
// types.go): a plain string as nvarchar(<its length>), a nil as
// nvarchar(1), a time.Time as datetimeoffset(7). So the adapter passes
//
//   - every string as mssqldb.NVarCharMax: nvarchar(max), whatever its length
//     (a value too long for its column still fails with 2628, KindInvalid);
//     where a string is compared with a column it is CAST to
//     NVARCHAR(4000), so the comparison is between two sized NVARCHARs and
//     the column's index can be sought;
//   - every time as civil.DateTime, a missing one as mssqldb.NullDateTime:
//     datetime2(7) both;
//   - every integer as int64: bigint;
//   - every list (ids, outbox marks, rows of a batch) as one JSON text
//     (nvarchar(max)) the statement reads with OPENJSON, never as a list of
//     parameters whose length would change the text. OPENJSON needs
//     database compatibility level 130 or higher (Migrate checks it):
//     https://learn.microsoft.com/sql/t-sql/functions/openjson-transact-sql
//
// TestStatementParameters checks every statement the adapter sends.

// str passes s as nvarchar(max).
func str(s string) mssqldb.NVarCharMax { return mssqldb.NVarCharMax(s) }

// dt passes t as datetime2, in UTC milliseconds (a bare time.Time would go as
// datetimeoffset).
func dt(t time.Time) civil.DateTime { return civil.DateTimeOf(domain.Millis(t)) }

// dtPtr is dt for a nullable time: a NULL still declared datetime2.
func dtPtr(t *time.Time) mssqldb.NullDateTime {
	if t == nil {
		return mssqldb.NullDateTime{}
	}
	return mssqldb.NullDateTime{DateTime: dt(*t), Valid: true}
}

// jsonParam marshals v as the one nvarchar(max) parameter of an OPENJSON
// statement. The values are ids, numbers, times and strings the caller
// holds in memory, so marshalling cannot fail.
func jsonParam(v any) mssqldb.NVarCharMax {
	b, err := json.Marshal(v)
	if err != nil {
		panic("mssql: marshal a JSON parameter: " + err.Error())
	}
	return mssqldb.NVarCharMax(b)
}

// jsonTime formats a time for OPENJSON: ISO 8601 in UTC with milliseconds
// and no zone, which CONVERT(DATETIME2(3), ..., 126) reads exactly,
// whatever the session's language or DATEFORMAT.
func jsonTime(t time.Time) string { return domain.Millis(t).UTC().Format("2006-01-02T15:04:05.000") }

func jsonTimePtr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := jsonTime(*t)
	return &s
}

// idsParam is a JSON array of ids, read by `OPENJSON(@pN) WITH (id BIGINT '$')`.
func idsParam(ids []int64) mssqldb.NVarCharMax {
	if ids == nil {
		ids = []int64{}
	}
	return jsonParam(ids)
}
