package domain

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// The wire shapes as encoding/json writes them: the reference the
// hand-written encoders must match byte for byte.
type productWire struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	Price       string `json:"price"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

type userWire struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Email     string `json:"email"`
	CreatedAt string `json:"createdAt"`
	UpdatedAt string `json:"updatedAt"`
}

// checkEncoding compares Product and User encodings of the strings with
// encoding/json's.
func checkEncoding(t *testing.T, a, b string, id int64, cents int64, at time.Time) {
	t.Helper()
	p := Product{ID: id, Name: a, Description: b, Price: Money(cents), CreatedAt: at, UpdatedAt: at.Add(1500 * time.Microsecond)}
	u := User{ID: id, Name: a, Email: b, CreatedAt: at, UpdatedAt: at.Add(time.Hour)}
	for _, c := range []struct {
		got  any
		want any
	}{
		{p, productWire{p.ID, p.Name, p.Description, p.Price.String(), FormatTime(p.CreatedAt), FormatTime(p.UpdatedAt)}},
		{u, userWire{u.ID, u.Name, u.Email, FormatTime(u.CreatedAt), FormatTime(u.UpdatedAt)}},
		{[]Product{p, p}, []productWire{{p.ID, p.Name, p.Description, p.Price.String(), FormatTime(p.CreatedAt), FormatTime(p.UpdatedAt)}, {p.ID, p.Name, p.Description, p.Price.String(), FormatTime(p.CreatedAt), FormatTime(p.UpdatedAt)}}},
	} {
		got, err := json.Marshal(c.got)
		if err != nil {
			t.Fatalf("marshal %T: %v", c.got, err)
		}
		want, err := json.Marshal(c.want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%T encodes as\n%s\nencoding/json writes\n%s", c.got, got, want)
		}
	}
	// AppendJSON appends to what is there.
	want, _ := json.Marshal(p)
	if got := p.AppendJSON([]byte("[1,")); !bytes.Equal(got, append([]byte("[1,"), want...)) {
		t.Fatalf("Product.AppendJSON after a prefix: %s", got)
	}
	want, _ = json.Marshal(u)
	if got := u.AppendJSON([]byte("[1,")); !bytes.Equal(got, append([]byte("[1,"), want...)) {
		t.Fatalf("User.AppendJSON after a prefix: %s", got)
	}
}

func TestJSONMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2025, 3, 24, 5, 23, 54, 611_999_999, time.FixedZone("x", 3600))
	tests := []struct {
		name, a, b string
		id, cents  int64
	}{
		{"plain", "Laptop", "A fast one", 1, 29999},
		{"empty", "", "", 2, 0},
		{"negative price", "x", "y", 3, -150},
		{"quotes and backslashes", `say "hi"`, `C:\path\`, 4, 5},
		{"control characters", "a\tb\nc\rd\be\ff\x00g\x1fh", "\x7f", 5, 1},
		{"html", "<script>&</script>", "a > b", 6, 1},
		{"line separators", "a\u2028b\u2029c", "\u2027\u202a", 7, 1},
		{"non-ASCII", "Crème brûlée 🍮", "日本語", 8, 1},
		{"invalid UTF-8", "a\xffb\xc3", "\xed\xa0\x80", 9, 1},
		{"max values", "m", "m", 1<<63 - 1, int64(MaxMoney)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkEncoding(t, tc.a, tc.b, tc.id, tc.cents, at) })
	}
}

func FuzzJSONEncoding(f *testing.F) {
	f.Add("Laptop", "<b>\"x\"</b>\u2028", int64(1), int64(29999), int64(1742793834611))
	f.Add("\xff\x00", "é", int64(-1), int64(-5), int64(0))
	f.Fuzz(func(t *testing.T, a, b string, id, cents, ms int64) {
		checkEncoding(t, a, b, id, cents, time.UnixMilli(ms%(1<<40)))
	})
}

func BenchmarkMarshalProducts(b *testing.B) {
	at := time.Now()
	ps := make([]Product, 100)
	for i := range ps {
		ps[i] = Product{ID: int64(2*i + 1), Name: "Product name", Description: "A description of the product", Price: 1234, CreatedAt: at, UpdatedAt: at}
	}
	b.Run("json.Marshal", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(ps); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) { // as httpapi's writeList
		for b.Loop() {
			buf := make([]byte, 0, 2+len(ps)*160)
			for _, p := range ps {
				buf = append(p.AppendJSON(buf), ',')
			}
		}
	})
}
