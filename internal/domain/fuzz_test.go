package domain

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

var modes = []Mode{ModeCreate, ModeReplace, ModePatch}

func fuzzMode(m uint8) Mode { return modes[int(m)%len(modes)] }

// textFits reports why s breaks a text column's rules, or "" if it fits:
// valid UTF-8 without NUL (PostgreSQL rejects both), at least min characters,
// and at most max both as characters (PostgreSQL varchar) and as UTF-16 code
// units (SQL Server NVARCHAR counts those, so a character outside the BMP
// takes two).
func textFits(s string, min, max int) string {
	switch {
	case !utf8.ValidString(s):
		return "invalid UTF-8"
	case strings.ContainsRune(s, 0):
		return "contains NUL"
	case utf8.RuneCountInString(s) < min:
		return "too short"
	case len(utf16.Encode([]rune(s))) > max:
		return "too long for NVARCHAR"
	}
	return ""
}

func FuzzDecodeProduct(f *testing.F) {
	seeds := []string{
		`{"name":"A","price":299.99}`,
		`{"name":"A","price":"10","description":"x"}`,
		`{"id":9,"createdAt":"x","updatedAt":"y","name":"A","price":1}`,
		`{"name":"A","price":"1.500","description":null}`,
		`{"price":"-0"}`,
		`{"price":" 99999999.99 "}`,
		`{"price":100000000}`,
		`{"price":0.001}`,
		`{"price":1e2}`,
		`{"name":"a\u0000b"}`,
		`{"name":"\ud800"}`,
		`{"description":"` + strings.Repeat("\u00e9", 4000) + `"}`,
		`{"name":"` + strings.Repeat("\U0001F600", 200) + `","price":1}`,
		`{"id":1}`,
		`{}`,
		`[]`,
		`{"name":`,
		``,
	}
	for _, s := range seeds {
		for m := range modes {
			f.Add([]byte(s), uint8(m))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, m uint8) {
		mode := fuzzMode(m)
		c, err := DecodeProduct(body, mode)
		if err != nil {
			if k := ErrorKind(err); k != KindInvalid {
				t.Fatalf("error kind %v, want invalid: %v", k, err)
			}
			return
		}
		if mode != ModePatch && (c.Name == nil || c.Description == nil || c.Price == nil) {
			t.Fatalf("mode %d: change %+v lacks a field", mode, c)
		}
		if c.Name == nil && c.Description == nil && c.Price == nil {
			t.Fatalf("mode %d: %q accepted with nothing to change", mode, body)
		}
		if c.Name != nil {
			if why := textFits(*c.Name, 1, 255); why != "" {
				t.Fatalf("name %q accepted: %s", *c.Name, why)
			}
		}
		if c.Description != nil {
			if why := textFits(*c.Description, 0, 4000); why != "" {
				t.Fatalf("description accepted: %s", why)
			}
		}
		if c.Price != nil {
			if *c.Price < 0 || *c.Price > MaxMoney {
				t.Fatalf("price %d accepted", *c.Price)
			}
			// Cents hold at most 2 decimals; the text form must parse back.
			if back, err := ParseMoney(c.Price.String()); err != nil || back != *c.Price {
				t.Fatalf("price %v does not round-trip: %v, %v", *c.Price, back, err)
			}
		}

		// Round trip: what the API would store and send back decodes again
		// (a client PUTs back what it GOT) to the same values.
		p := c.Apply(Product{ID: 3, Name: "base", Description: "d", Price: 100})
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeProduct(out, ModeReplace)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if p2 := c2.Apply(Product{ID: 3}); p2.Name != p.Name || p2.Description != p.Description || p2.Price != p.Price {
			t.Fatalf("round trip: %+v became %+v", p, p2)
		}
	})
}

func FuzzDecodeUser(f *testing.F) {
	seeds := []string{
		`{"name":"Ann","email":"ann@example.com"}`,
		`{"name":"Ann","email":" ann@example.com "}`,
		`{"name":"Ann","email":"not-an-email"}`,
		`{"name":"Ann","email":"\"a b\"@example.com"}`,
		`{"name":"Ann","email":"a@b"}`,
		`{"email":"\u00e9l\u00e8ve@\u00e9cole.fr"}`,
		`{"email":"` + strings.Repeat("a", 240) + `@example.com"}`,
		`{"name":"` + strings.Repeat("\U0001F600", 60) + `"}`,
		`{"name":"Bo"}`,
		`{"name":"Bo","id":4,"updatedAt":null}`,
		`{"createdAt":1}`,
		`{}`,
		`{"email":null}`,
		`nul`,
	}
	for _, s := range seeds {
		for m := range modes {
			f.Add([]byte(s), uint8(m))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, m uint8) {
		mode := fuzzMode(m)
		c, err := DecodeUser(body, mode)
		if err != nil {
			if k := ErrorKind(err); k != KindInvalid {
				t.Fatalf("error kind %v, want invalid: %v", k, err)
			}
			return
		}
		if mode != ModePatch && (c.Name == nil || c.Email == nil) {
			t.Fatalf("mode %d: change %+v lacks a field", mode, c)
		}
		if c.Name == nil && c.Email == nil {
			t.Fatalf("mode %d: %q accepted with nothing to change", mode, body)
		}
		if c.Name != nil {
			if why := textFits(*c.Name, 1, 100); why != "" {
				t.Fatalf("name %q accepted: %s", *c.Name, why)
			}
		}
		if c.Email != nil {
			e := *c.Email
			if why := textFits(e, 3, 254); why != "" {
				t.Fatalf("email %q accepted: %s", e, why)
			}
			local, domain, ok := cutLast(e, "@")
			if !ok || local == "" || domain == "" || strings.TrimSpace(e) != e {
				t.Fatalf("email %q accepted without the shape local@domain", e)
			}
			if strings.ContainsFunc(e, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("email %q accepted with a control character", e)
			}
		}

		u := c.Apply(User{ID: 4, Name: "base", Email: "base@example.com"})
		out, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := DecodeUser(out, ModeReplace)
		if err != nil {
			t.Fatalf("re-decode %s: %v", out, err)
		}
		if u2 := c2.Apply(User{ID: 4}); u2.Name != u.Name || u2.Email != u.Email {
			t.Fatalf("round trip: %+v became %+v", u, u2)
		}
	})
}

func cutLast(s, sep string) (before, after string, found bool) {
	if i := strings.LastIndex(s, sep); i >= 0 {
		return s[:i], s[i+len(sep):], true
	}
	return s, "", false
}
