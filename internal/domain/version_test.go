package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestEmailKey(t *testing.T) {
	tests := []struct{ a, b string }{
		{"Ann@Example.com", "ann@example.com"},
		{"ａｎｎ@ｅｘａｍｐｌｅ.com", "ann@example.com"}, // full-width letters
		{" ann@example.com  ", "ann@example.com"},
		{"ANN@EXAMPLE.COM", "ann@example.com"},
	}
	for _, tt := range tests {
		if got := EmailKey(tt.a); got != tt.b {
			t.Errorf("EmailKey(%q) = %q, want %q", tt.a, got, tt.b)
		}
	}
	// What SQL Server's CI_AS collation would also equate, but is a different address.
	for _, pair := range [][2]string{{"ánn@example.com", "ann@example.com"}, {"カ@example.com", "か@example.com"}} {
		if EmailKey(pair[0]) == EmailKey(pair[1]) {
			t.Errorf("EmailKey equates %q and %q", pair[0], pair[1])
		}
	}
}

func TestDecodeUserRejectsLongKey(t *testing.T) {
	// U+FDFA expands to 18 characters under NFKC: 20 of them fit the email
	// column but not the key.
	local := strings.Repeat("\uFDFA", 20)
	_, err := DecodeUser([]byte(`{"name":"a","email":"`+local+`@example.com"}`), ModeCreate)
	var de *Error
	if !errors.As(err, &de) || de.Kind != KindInvalid || !strings.Contains(de.Fields["email"], "normalised") {
		t.Fatalf("err = %#v, want invalid for the normalised length", err)
	}
}

func TestVector(t *testing.T) {
	a, b := Vector{P: 2, F: 1}, Vector{P: 1, F: 2}
	if a.Dominates(b) || b.Dominates(a) || !a.Dominates(a) {
		t.Error("dominance wrong for concurrent vectors")
	}
	if m := a.Max(b); m != (Vector{2, 2}) || !m.Dominates(a) || !m.Dominates(b) {
		t.Errorf("max = %v", m)
	}
}

func TestVectorNext(t *testing.T) {
	const floor = 1_000_000
	tests := []struct {
		name      string
		v         Vector
		j         Jump
		primary   bool
		wantV     Vector
		wantJumps Jump
	}{
		// From 0 too: no write of the row here ever had a value below the
		// floor, so one the other database holds there was lost here.
		{"a create starts at the floor", Vector{}, Jump{}, true, Vector{P: floor}, Jump{0, floor}},
		{"a create on the fallback", Vector{}, Jump{}, false, Vector{F: floor}, Jump{0, floor}},
		{"a first write here of a row created there", Vector{F: 5}, Jump{}, true, Vector{P: floor, F: 5}, Jump{0, floor}},
		{"first write after a restart jumps", Vector{P: 7, F: 3}, Jump{}, true, Vector{P: floor, F: 3}, Jump{7, floor}},
		{"the fallback's first write after a restart", Vector{P: 7, F: 3}, Jump{}, false, Vector{P: 7, F: floor}, Jump{3, floor}},
		{"a later write counts on", Vector{P: floor + 4, F: 3}, Jump{7, floor}, true, Vector{P: floor + 5, F: 3}, Jump{7, floor}},
		{"a new jump replaces the last", Vector{P: floor - 10, F: 3}, Jump{7, 500}, true, Vector{P: floor, F: 3}, Jump{floor - 10, floor}},
		{"an entry already past the floor (another, later process)", Vector{P: floor + 99}, Jump{}, true, Vector{P: floor + 100}, Jump{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, j := tt.v.Next(tt.primary, floor, tt.j)
			if v != tt.wantV || j != tt.wantJumps {
				t.Errorf("Next = %v %v, want %v %v", v, j, tt.wantV, tt.wantJumps)
			}
		})
	}
}

func TestLost(t *testing.T) {
	jump := Jump{From: 7, To: 1000}
	tests := []struct {
		name string
		own  int64
		j    Jump
		seen int64
		want bool
	}{
		{"the same write", 1002, jump, 1002, false},
		{"the other side is behind", 1002, jump, 1001, false},
		{"seen before the jump", 1002, jump, 7, false},
		{"seen long before the jump", 1002, jump, 3, false},
		{"seen inside the jump: lost in a restore", 1002, jump, 9, true},
		{"seen ahead of this side: lost, not written since", 5, Jump{}, 9, true},
		{"never written here", 0, Jump{}, 0, false},
	}
	for _, tt := range tests {
		if got := Lost(tt.own, tt.j, tt.seen); got != tt.want {
			t.Errorf("%s: Lost(%d, %v, %d) = %v, want %v", tt.name, tt.own, tt.j, tt.seen, got, tt.want)
		}
	}
}

func TestApplyAtMovesOnlyChangedFields(t *testing.T) {
	t0, t1 := time.Unix(0, 0).UTC(), time.Unix(60, 0).UTC()
	p := Product{Name: "a", Description: "d", Price: 1, NameAt: t0, DescriptionAt: t0, PriceAt: t0}
	name, price := "a", Money(2)
	q := ProductChange{Name: &name, Price: &price}.ApplyAt(p, t1)
	if !q.NameAt.Equal(t0) || !q.DescriptionAt.Equal(t0) || !q.PriceAt.Equal(t1) || q.Price != 2 {
		t.Errorf("ApplyAt = %+v", q)
	}
	u := User{Name: "n", Email: "e@x.io", NameAt: t0, EmailAt: t0}
	email := "f@x.io"
	v := UserChange{Email: &email}.ApplyAt(u, t1)
	if !v.NameAt.Equal(t0) || !v.EmailAt.Equal(t1) {
		t.Errorf("user ApplyAt = %+v", v)
	}
}
