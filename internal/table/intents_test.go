package table

import (
	"strings"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// An intent is read back as recorded, the next one of an item replaces it,
// and the largest detail (three rows of a 4,000-character description of
// characters JSON escapes to six bytes each) stays within Azure's limits
// (newStore checks every request on the wire).
func TestIntentRoundTrip(t *testing.T) {
	s := newStore(t, testenv.Storage(t), nil)
	c := ctx(t)
	run := "8000000000000aaaaaaaaaa"
	if _, ok, err := s.Intent(c, run, domain.EntityProduct, 7); err != nil || ok {
		t.Fatalf("intent of an item without one: ok %v, %v", ok, err)
	}
	big := strings.Repeat(`\u0001`, 3*4000)
	want := Result{Entity: domain.EntityProduct, ID: 7, Status: "conflict", Reason: "merged", Detail: `{"merged":"` + big + `"}`,
		Version: time.Date(2026, 12, 3, 1, 2, 3, 4_000_000, time.UTC), Ver: domain.Vector{P: 1796288227631054, F: 3}}
	if err := s.RecordIntent(c, run, want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Intent(c, run, domain.EntityProduct, 7)
	if err != nil || !ok || got.Status != want.Status || got.Reason != want.Reason || got.Detail != want.Detail ||
		!got.Version.Equal(want.Version) || got.Ver != want.Ver {
		t.Fatalf("intent read back %+v (%v, %v)", got, ok, err)
	}
	next := Result{Entity: domain.EntityProduct, ID: 7, Status: "updated", Ver: domain.Vector{P: 1796288227631055, F: 3}}
	if err := s.RecordIntent(c, run, next); err != nil {
		t.Fatal(err)
	}
	if got, _, _ := s.Intent(c, run, domain.EntityProduct, 7); got.Status != "updated" || got.Detail != "" || got.Ver != next.Ver {
		t.Fatalf("replaced intent %+v", got)
	}
}
