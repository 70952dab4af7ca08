package mssql

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"strings"
	"testing"
	"time"

	mssqldb "github.com/microsoft/go-mssqldb"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// SQL Server cannot run here: these pin the purge statements, which the
// contract suite (storetest) runs for real only against PostgreSQL: fixed
// parameter types, the same text whatever the number of tombstones, the
// tombstones in one JSON parameter that OPENJSON reads by the same names.
func TestPurgeSQL(t *testing.T) {
	before := time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	c := context.Background()
	var texts []string
	for _, n := range []int{1, 2, 700} {
		db, r := recorded(t, store.RolePrimary, answer{"OUTPUT DELETED.id", cols(1), [][]driver.Value{{int64(7)}}})
		ts := make([]store.Tombstone, n)
		for i := range ts {
			ts[i] = store.Tombstone{ID: int64(2*i + 1), Ver: domain.Vector{P: 3, F: 1}}
		}
		if _, err := db.PurgeTombstones(c, domain.EntityProduct, ts, before); err != nil {
			t.Fatal(err)
		}
		stmts := r.take()
		var text []string
		for _, s := range stmts {
			if !strings.Contains(s.query, "@p") {
				continue // SET XACT_ABORT ON and the like
			}
			for i, a := range s.args {
				if !fixedType(a) {
					t.Errorf("parameter @p%d is %T in %q", i+1, a, s.query)
				}
			}
			if len(s.args) != 3 {
				t.Errorf("%q gets %d parameters, want 3", s.query, len(s.args))
				continue
			}
			js, _ := s.args[2].(mssqldb.NVarCharMax)
			var rows []tombstoneRow
			if err := json.Unmarshal([]byte(js), &rows); err != nil || len(rows) == 0 || len(rows) > purgeChunk || rows[0].P != 3 || rows[0].F != 1 {
				t.Errorf("tombstones parameter %.80q: %d rows, %v", js, len(rows), err)
			}
			text = append(text, strings.Join(strings.Fields(s.query), " "))
		}
		texts = append(texts, strings.Join(text[:2], " | "))
	}
	for _, s := range texts[1:] {
		if s != texts[0] {
			t.Errorf("the statements vary with the number of tombstones:\n%s\n%s", texts[0], s)
		}
	}
	for _, want := range []string{
		"OPENJSON(@p3) WITH (id BIGINT '$.id', ver_p BIGINT '$.p', ver_f BIGINT '$.f') AS m INNER LOOP JOIN dbo.products AS t WITH (UPDLOCK, HOLDLOCK, FORCESEEK) ON t.id = m.id",
		"DELETE t OUTPUT DELETED.id FROM OPENJSON(@p3) WITH (id BIGINT '$.id', ver_p BIGINT '$.p', ver_f BIGINT '$.f') AS m " +
			"INNER LOOP JOIN dbo.products AS t WITH (FORCESEEK) ON t.id = m.id AND t.ver_p = m.ver_p AND t.ver_f = m.ver_f",
		"WHERE t.deleted_at IS NOT NULL AND t.deleted_at < @p2",
		"AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WITH (UPDLOCK, HOLDLOCK, FORCESEEK) WHERE o.entity = CAST(@p1 AS NVARCHAR(4000)) AND o.entity_id = t.id)",
	} {
		if !strings.Contains(texts[0], want) {
			t.Errorf("purge statements lack %q:\n%s", want, texts[0])
		}
	}
	b, _ := json.Marshal(tombstoneRow{ID: 1, P: 2, F: 3})
	if string(b) != `{"id":1,"p":2,"f":3}` {
		t.Errorf("tombstone JSON %s does not match the OPENJSON paths", b)
	}
	cand := strings.Join(strings.Fields(purgeCandidatesSQL("dbo.users")), " ")
	if cand != "SELECT TOP (@p4) t.id, t.ver_p, t.ver_f FROM dbo.users AS t WHERE t.id > @p1 AND t.deleted_at IS NOT NULL AND t.deleted_at < @p2 "+
		"AND NOT EXISTS (SELECT 1 FROM dbo.outbox AS o WHERE o.entity = CAST(@p3 AS NVARCHAR(4000)) AND o.entity_id = t.id) ORDER BY t.id" {
		t.Errorf("candidates = %q", cand)
	}
}
