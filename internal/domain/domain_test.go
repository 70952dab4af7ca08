package domain

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseMoney(t *testing.T) {
	tests := []struct {
		in      string
		want    Money
		wantErr bool
	}{
		{"299.99", 29999, false},
		{"5", 500, false},
		{"0.1", 10, false},
		{"1.500", 150, false},
		{"99999999.99", MaxMoney, false},
		{"-1.5", -150, false},
		{"1.234", 0, true},
		{"1e2", 0, true},
		{"", 0, true},
		{"1.", 0, true},
		{"abc", 0, true},
		{"12345678901234567890", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseMoney(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && got != tt.want) {
			t.Errorf("ParseMoney(%q) = %v, %v; want %v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestMoneyString(t *testing.T) {
	for m, want := range map[Money]string{29999: "299.99", 500: "5.00", 1: "0.01", -150: "-1.50", 0: "0.00"} {
		if got := m.String(); got != want {
			t.Errorf("Money(%d).String() = %q, want %q", m, got, want)
		}
	}
}

func TestProductJSON(t *testing.T) {
	ts := time.Date(2025, 3, 24, 5, 23, 54, 611_900_000, time.FixedZone("x", 3600))
	b, err := json.Marshal(Product{ID: 6, Name: "Test", Description: "D", Price: 29999, CreatedAt: ts, UpdatedAt: ts})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":6,"name":"Test","description":"D","price":"299.99","createdAt":"2025-03-24T04:23:54.611Z","updatedAt":"2025-03-24T04:23:54.611Z"}`
	if string(b) != want {
		t.Errorf("got %s\nwant %s", b, want)
	}
}

func TestDecodeProduct(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		mode      Mode
		badFields []string // empty: valid
		badBody   bool     // invalid without field errors
	}{
		{"valid number price", `{"name":"A","price":299.99}`, ModeCreate, nil, false},
		{"valid string price", `{"name":"A","price":"10","description":"x"}`, ModeCreate, nil, false},
		{"read-only fields ignored", `{"id":9,"createdAt":"x","updatedAt":"y","name":"A","price":1}`, ModeReplace, nil, false},
		{"missing fields", `{}`, ModeCreate, []string{"name", "price"}, false},
		{"wrong types", `{"name":5,"price":true}`, ModeCreate, []string{"name", "price"}, false},
		{"negative price", `{"name":"A","price":-1}`, ModeCreate, []string{"price"}, false},
		{"three decimals", `{"name":"A","price":1.234}`, ModeCreate, []string{"price"}, false},
		{"huge price", `{"name":"A","price":100000000}`, ModeCreate, []string{"price"}, false},
		{"empty name", `{"name":"","price":1}`, ModeCreate, []string{"name"}, false},
		{"long name", `{"name":"` + repeat("n", 256) + `","price":1}`, ModeCreate, []string{"name"}, false},
		{"long description", `{"name":"A","price":1,"description":"` + repeat("d", 4001) + `"}`, ModeCreate, []string{"description"}, false},
		{"NUL in name", `{"name":"a\u0000b","price":1}`, ModeCreate, []string{"name"}, false},
		{"unknown field", `{"name":"A","price":1,"colour":"red"}`, ModeCreate, []string{"colour"}, false},
		{"patch subset", `{"price":"3.50"}`, ModePatch, nil, false},
		{"patch empty", `{}`, ModePatch, nil, true},
		{"malformed", `{"name":`, ModeCreate, nil, true},
		{"array", `[1]`, ModeCreate, nil, true},
		{"empty body", ``, ModeCreate, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeProduct([]byte(tt.body), tt.mode)
			checkDecode(t, err, tt.badFields, tt.badBody)
		})
	}
}

func TestDecodeUser(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		mode      Mode
		badFields []string
	}{
		{"valid", `{"name":"Ann","email":"ann@example.com"}`, ModeCreate, nil},
		{"invalid email", `{"name":"Ann","email":"not-an-email"}`, ModeCreate, []string{"email"}},
		{"long email", `{"name":"Ann","email":"` + repeat("a", 250) + `@x.io"}`, ModeCreate, []string{"email"}},
		{"long name", `{"name":"` + repeat("a", 101) + `","email":"a@b.io"}`, ModeCreate, []string{"name"}},
		{"missing email", `{"name":"Ann"}`, ModeReplace, []string{"email"}},
		{"patch name", `{"name":"Bo"}`, ModePatch, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeUser([]byte(tt.body), tt.mode)
			checkDecode(t, err, tt.badFields, false)
		})
	}
}

func checkDecode(t *testing.T, err error, badFields []string, badBody bool) {
	t.Helper()
	if len(badFields) == 0 && !badBody {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if ErrorKind(err) != KindInvalid {
		t.Fatalf("want an invalid error, got %v", err)
	}
	de := err.(*Error)
	for _, f := range badFields {
		if de.Fields[f] == "" {
			t.Errorf("no message for field %q in %v", f, de.Fields)
		}
	}
	if len(de.Fields) != len(badFields) {
		t.Errorf("fields %v, want exactly %v", de.Fields, badFields)
	}
}

func repeat(s string, n int) string {
	b := make([]byte, 0, n)
	for range n {
		b = append(b, s...)
	}
	return string(b)
}

func TestNextVersion(t *testing.T) {
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := NextVersion(base, base); !got.Equal(base.Add(time.Millisecond)) {
		t.Errorf("same instant: got %v", got)
	}
	if got := NextVersion(base.Add(time.Second), base); !got.Equal(base.Add(time.Second)) {
		t.Errorf("later now: got %v", got)
	}
}
