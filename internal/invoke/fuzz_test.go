package invoke

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeBind feeds arbitrary bodies to Decode and Bind (which must never
// panic), and builds valid envelopes from (entity, id, run, dequeue) in every
// encoding the host or tools use, which must bind back to the same message.
func FuzzDecodeBind(f *testing.F) {
	const msg = `{"entity":"product","id":42,"run":"r1"}`
	seeds := []string{
		`{"Data":{"msg":` + msg + `},"Metadata":{"DequeueCount":1,"Id":"abc"}}`,
		`{"Data":{"msg":` + quote(msg) + `},"Metadata":{"DequeueCount":"1","Id":"\"abc\""}}`,
		`{"Data":{"msg":` + quote(quote(msg)) + `},"Metadata":{"DequeueCount":"\"1\""}}`,
		`{"Data":{"msg":` + quote(base64.StdEncoding.EncodeToString([]byte(msg))) + `}}`,
		`{"Data":{"msg":"test"}}`,
		`{"Data":{"msg":null},"Metadata":null}`,
		`{"Data":{"timer":{"Schedule":{},"ScheduleStatus":null,"IsPastDue":false}}}`,
		`{"Data":{"msg":"\"\\\"\\\\\\\"\\\"\""}}`,
		`{"Data":`,
		`[]`,
		``,
	}
	for i, s := range seeds {
		f.Add([]byte(s), "product", int64(i), "run-1", int64(i))
	}
	f.Add([]byte(`{}`), "user", int64(-1), "", int64(-7))
	f.Add([]byte(`{}`), "\u00e9\U0001F600\"\\", int64(1)<<62, "<&>", int64(1)<<40)

	f.Fuzz(func(t *testing.T, body []byte, entity string, id int64, run string, dequeue int64) {
		// Arbitrary input: no panics, and errors are the invalid kind.
		if req, err := Decode(bytes.NewReader(body)); err == nil {
			var m syncMsg
			_ = req.Bind("msg", &m)
			var s string
			_ = req.Bind("msg", &s)
			var a any
			_ = req.Bind("msg", &a)
			var ti TimerInfo
			_ = req.Bind("timer", &ti)
			if n := req.DequeueCount(); n < 0 {
				t.Fatalf("DequeueCount %d < 0", n)
			}
			_ = req.MetaString("Id")
		}

		// Valid envelopes round-trip in every encoding.
		if !utf8.ValidString(entity) || !utf8.ValidString(run) {
			return // json.Marshal would coerce them; nothing to compare exactly
		}
		want := syncMsg{Entity: entity, ID: id, Run: run}
		text, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		countJSON := []string{strconv.FormatInt(dequeue, 10), quote(strconv.FormatInt(dequeue, 10)), quote(quote(strconv.FormatInt(dequeue, 10)))}
		forms := []string{
			string(text),
			quote(string(text)),
			quote(quote(string(text))),
			quote(base64.StdEncoding.EncodeToString(text)),
			quote(quote(base64.StdEncoding.EncodeToString(text))),
		}
		for i, form := range forms {
			env := `{"Data":{"msg":` + form + `},"Metadata":{"DequeueCount":` + countJSON[i%3] + `,"Id":` + quote(quote(run)) + `}}`
			req, err := Decode(bytes.NewReader([]byte(env)))
			if err != nil {
				t.Fatalf("form %d: Decode(%s): %v", i, env, err)
			}
			var got syncMsg
			if err := req.Bind("msg", &got); err != nil {
				t.Fatalf("form %d: Bind(%s): %v", i, form, err)
			}
			if got != want {
				t.Fatalf("form %d: Bind = %+v, want %+v", i, got, want)
			}
			wantCount := 0
			if dequeue >= 0 && dequeue <= 1<<31-1 {
				wantCount = int(dequeue)
			}
			if n := req.DequeueCount(); n != wantCount {
				t.Fatalf("form %d: DequeueCount(%s) = %d, want %d", i, countJSON[i%3], n, wantCount)
			}
			if id := req.MetaString("Id"); id != run && !isStringJSON(run) {
				t.Fatalf("form %d: MetaString(Id) = %q, want %q", i, id, run)
			}
		}
	})
}

// isStringJSON reports whether s is itself a JSON string literal: MetaString
// cannot tell such a value from one more layer of encoding, by design.
func isStringJSON(s string) bool {
	var x string
	return json.Unmarshal([]byte(s), &x) == nil
}
