package storetest

import (
	"testing"
	"time"

	"dualsync/internal/store"
)

// testMarks: marks grow, are found by number and token together, and old
// ones are pruned while the latest store.MarksKept stay; a mark older than
// every kept one is no evidence of a loss.
func testMarks(t *testing.T, open Opener) {
	db := migrated(t, open, store.RolePrimary)
	c := ctx(t)
	if must[bool](t, "has mark")(db.HasMark(c, store.Mark{N: 1, Token: "x"})) {
		t.Fatal("a database without marks holds one")
	}
	first := must[store.Mark](t, "add mark")(db.AddMark(c))
	if first.N <= 0 || len(first.Token) < 20 {
		t.Fatalf("first mark %+v: want a positive number and a random token", first)
	}
	prev := first
	var tokens = map[string]bool{first.Token: true}
	for range store.MarksKept + 100 {
		m := must[store.Mark](t, "add mark")(db.AddMark(c))
		if m.N <= prev.N || tokens[m.Token] {
			t.Fatalf("mark %+v after %+v: want a higher number and a new token", m, prev)
		}
		tokens[m.Token] = true
		prev = m
	}
	tests := []struct {
		name string
		m    store.Mark
		want bool
	}{
		{"the latest", prev, true},
		{"the last kept", store.Mark{N: prev.N - store.MarksKept + 1, Token: ""}, false}, // token must match too
		{"the latest with another token", store.Mark{N: prev.N, Token: first.Token}, false},
		{"a number never handed out", store.Mark{N: prev.N + 1, Token: prev.Token}, false},
		{"the first, pruned: no evidence of a loss", first, true},
		{"a forged one older than any kept", store.Mark{N: first.N, Token: "forged"}, true},
	}
	for _, tc := range tests {
		if got := must[bool](t, "has mark")(db.HasMark(c, tc.m)); got != tc.want {
			t.Errorf("HasMark(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// testPeer: what a database holds about the other is written by compare
// and set only.
func testPeer(t *testing.T, open Opener) {
	db := migrated(t, open, store.RoleFallback)
	c := ctx(t)
	if p := must[store.Peer](t, "peer")(db.Peer(c, store.RolePrimary)); p != (store.Peer{}) {
		t.Fatalf("peer of a new database: %+v, want none", p)
	}
	a := store.Peer{Seen: store.Mark{N: 7, Token: "aaaaaaaaaaaaaaaaaaaaaaaaaa"}}
	b := store.Peer{Seen: store.Mark{N: 9, Token: "bbbbbbbbbbbbbbbbbbbbbbbbbb"}, RegressedAt: time.Date(2026, 12, 7, 10, 11, 12, 345_000_000, time.UTC)}
	cc := store.Peer{Seen: store.Mark{N: 3, Token: "cccccccccccccccccccccccccc"}}
	steps := []struct {
		name     string
		old, new store.Peer
		want     bool
		holds    store.Peer
	}{
		{"insert", store.Peer{}, a, true, a},
		{"insert again", store.Peer{}, b, false, a},
		{"update from a stale value", b, cc, false, a},
		{"update", a, b, true, b},
		{"update with the old regression time", store.Peer{Seen: b.Seen}, a, false, b},
		{"clear the regression", b, store.Peer{Seen: cc.Seen}, true, store.Peer{Seen: cc.Seen}},
	}
	for _, s := range steps {
		got := must[bool](t, s.name)(db.SetPeer(c, store.RolePrimary, s.old, s.new))
		if got != s.want {
			t.Errorf("%s: SetPeer wrote %v, want %v", s.name, got, s.want)
		}
		if p := must[store.Peer](t, "peer")(db.Peer(c, store.RolePrimary)); !p.Equal(s.holds) {
			t.Errorf("%s: holds %+v, want %+v", s.name, p, s.holds)
		}
	}
	if p := must[store.Peer](t, "peer")(db.Peer(c, store.RoleFallback)); p != (store.Peer{}) {
		t.Errorf("peer of another role: %+v, want none", p)
	}
}
