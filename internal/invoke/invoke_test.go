package invoke

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"dualsync/internal/domain"
)

type syncMsg struct {
	Entity string `json:"entity"`
	ID     int64  `json:"id"`
	Run    string `json:"run"`
}

// quote JSON-encodes s as a string, as the host does once per layer.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func envelopeWith(binding string, meta string) string {
	if meta == "" {
		meta = "{}"
	}
	return `{"Data":{"msg":` + binding + `},"Metadata":` + meta + `}`
}

func TestDecodeBind(t *testing.T) {
	const msg = `{"entity":"product","id":42,"run":"r1"}`
	want := syncMsg{Entity: "product", ID: 42, Run: "r1"}
	tests := []struct {
		name       string
		body       string
		want       syncMsg
		decodeErr  bool
		bindErr    bool
		dequeue    int
		id         string
		bindTarget string // binding name to bind; "msg" if empty
	}{
		{name: "object", body: envelopeWith(msg, `{"DequeueCount":1,"Id":"abc"}`), want: want, dequeue: 1, id: "abc"},
		{name: "string with JSON", body: envelopeWith(quote(msg), `{"DequeueCount":"2","Id":"\"abc\""}`), want: want, dequeue: 2, id: "abc"},
		{name: "double-encoded (host, devhost)", body: envelopeWith(quote(quote(msg)), `{"DequeueCount":"\"3\"","Id":"\"\\\"abc\\\"\""}`), want: want, dequeue: 3, id: "abc"},
		{name: "base64 string", body: envelopeWith(quote(base64.StdEncoding.EncodeToString([]byte(msg))), ""), want: want},
		{name: "base64 double-encoded", body: envelopeWith(quote(quote(base64.StdEncoding.EncodeToString([]byte(msg)))), ""), want: want},
		{name: "whitespace around JSON in string", body: envelopeWith(quote("  \n"+msg+"\n"), ""), want: want},
		{name: "lowercase envelope keys", body: `{"data":{"msg":` + msg + `},"metadata":{"DequeueCount":5}}`, want: want, dequeue: 5},
		{name: "no metadata", body: `{"Data":{"msg":` + msg + `}}`, want: want},
		{name: "bad DequeueCount", body: envelopeWith(msg, `{"DequeueCount":"x"}`), want: want, dequeue: 0},
		{name: "negative DequeueCount", body: envelopeWith(msg, `{"DequeueCount":-4}`), want: want, dequeue: 0},
		{name: "fractional DequeueCount", body: envelopeWith(msg, `{"DequeueCount":1.5}`), want: want, dequeue: 0},
		{name: "object Id", body: envelopeWith(msg, `{"Id":{"a":1}}`), want: want, id: ""},
		{name: "missing binding", body: envelopeWith(msg, ""), bindTarget: "other", bindErr: true},
		{name: "null binding", body: envelopeWith("null", ""), bindErr: true},
		{name: "plain word (valid base64) is not JSON", body: envelopeWith(quote("test"), ""), bindErr: true},
		{name: "garbage string", body: envelopeWith(quote("{not json"), ""), bindErr: true},
		{name: "wrong type", body: envelopeWith(`{"id":"x"}`, ""), bindErr: true},
		{name: "number binding into struct", body: envelopeWith(`7`, ""), bindErr: true},
		{name: "garbage body", body: `{"Data":`, decodeErr: true},
		{name: "array body", body: `[1,2]`, decodeErr: true},
		{name: "empty body", body: ``, decodeErr: true},
		{name: "Data not an object", body: `{"Data":"x"}`, decodeErr: true},
		{name: "trailing data", body: envelopeWith(msg, "") + `{}`, decodeErr: true},
		{name: "oversized body", body: envelopeWith(quote(strings.Repeat("a", MaxBody)), ""), decodeErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Decode(strings.NewReader(tt.body))
			if tt.decodeErr {
				if !domain.IsKind(err, domain.KindInvalid) {
					t.Fatalf("Decode error = %v, want an invalid-kind error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			name := tt.bindTarget
			if name == "" {
				name = "msg"
			}
			var got syncMsg
			err = req.Bind(name, &got)
			if tt.bindErr {
				if !domain.IsKind(err, domain.KindInvalid) {
					t.Fatalf("Bind error = %v, want an invalid-kind error", err)
				}
				var de *domain.Error
				if !errors.As(err, &de) || !strings.Contains(de.Message, name) {
					t.Errorf("Bind error %v does not name binding %q", err, name)
				}
				return
			}
			if err != nil {
				t.Fatalf("Bind: %v", err)
			}
			if got != tt.want {
				t.Errorf("Bind = %+v, want %+v", got, tt.want)
			}
			if n := req.DequeueCount(); n != tt.dequeue {
				t.Errorf("DequeueCount = %d, want %d", n, tt.dequeue)
			}
			if id := req.MetaString("Id"); id != tt.id {
				t.Errorf("MetaString(Id) = %q, want %q", id, tt.id)
			}
		})
	}
}

func TestBindScalars(t *testing.T) {
	tests := []struct {
		name    string
		binding string
		target  func() any
		want    any
	}{
		{"plain text message once-encoded", quote("hello"), func() any { return new(string) }, "hello"},
		{"plain text message double-encoded", quote(quote("hello")), func() any { return new(string) }, "hello"},
		{"JSON message into a string keeps the JSON", quote(`{"a":1}`), func() any { return new(json.RawMessage) }, json.RawMessage(`{"a":1}`)},
		{"numeric string into int", quote(quote("42")), func() any { return new(int) }, 42},
		{"number into int", `42`, func() any { return new(int) }, 42},
		{"array", quote(`[1,2]`), func() any { return new([]int) }, []int{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := Decode(strings.NewReader(envelopeWith(tt.binding, "")))
			if err != nil {
				t.Fatal(err)
			}
			v := tt.target()
			if err := req.Bind("msg", v); err != nil {
				t.Fatalf("Bind: %v", err)
			}
			if got := reflect.ValueOf(v).Elem().Interface(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Bind = %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestBindTimer(t *testing.T) {
	body := `{"Data":{"timer":{"Schedule":{"AdjustForDST":true},"ScheduleStatus":{"Last":"0001-01-01T00:00:00","Next":"2016-10-04T10:20:00+00:00","LastUpdated":"2016-10-04T10:16:00+00:00"},"IsPastDue":true}},"Metadata":{"sys":{"MethodName":"OutboxRelay"}}}`
	req, err := Decode(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var ti TimerInfo
	if err := req.Bind("timer", &ti); err != nil {
		t.Fatal(err)
	}
	if !ti.IsPastDue || ti.ScheduleStatus == nil || ti.ScheduleStatus.Last != "0001-01-01T00:00:00" {
		t.Errorf("TimerInfo = %+v", ti)
	}
	if s := req.MetaString("sys"); s != "" {
		t.Errorf("MetaString(sys) = %q, want empty for an object", s)
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name   string
		status int
		resp   Response
		want   string
		code   int
	}{
		{"empty", 200, Response{}, `{"Outputs":{},"Logs":[],"ReturnValue":null}`, 200},
		{"values", 200, Response{Outputs: map[string]any{"out": []string{"a"}}, Logs: []string{"x"}, ReturnValue: 1}, `{"Outputs":{"out":["a"]},"Logs":["x"],"ReturnValue":1}`, 200},
		{"unencodable output", 200, Response{Outputs: map[string]any{"c": make(chan int)}}, "", 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tt.status, tt.resp)
			if rec.Code != tt.code {
				t.Errorf("status %d, want %d", rec.Code, tt.code)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.want != "" && rec.Body.String() != tt.want {
				t.Errorf("body %s, want %s", rec.Body, tt.want)
			}
			var r map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || string(r["Outputs"]) == "null" || string(r["Logs"]) == "null" {
				t.Errorf("body %s is not a complete response (%v)", rec.Body, err)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	const good = `{"Data":{"msg":"{\"entity\":\"user\",\"id\":7}"},"Metadata":{"DequeueCount":"1"}}`
	tests := []struct {
		name     string
		body     string
		fn       Func
		wantCode int
		wantLog  string
		wantRet  string
	}{
		{"success", good, func(_ context.Context, r Request) (Response, error) {
			var m syncMsg
			if err := r.Bind("msg", &m); err != nil {
				return Response{}, err
			}
			return Response{ReturnValue: m.ID}, nil
		}, 200, "", "7"},
		{"handler error", good, func(context.Context, Request) (Response, error) {
			return Response{}, domain.Errorf(domain.KindUnavailable, "primary down")
		}, 500, "primary down", "null"},
		{"bind error", `{"Data":{}}`, func(_ context.Context, r Request) (Response, error) {
			var m syncMsg
			return Response{}, r.Bind("msg", &m)
		}, 500, `binding "msg" is missing`, "null"},
		{"panic", good, func(context.Context, Request) (Response, error) {
			panic("boom")
		}, 500, "panic: boom", "null"},
		{"invalid envelope", `not json`, func(context.Context, Request) (Response, error) {
			t.Error("fn called for an invalid envelope")
			return Response{}, nil
		}, 400, "JSON object", "null"},
		{"oversized", `{"Data":{"msg":"` + strings.Repeat("a", MaxBody) + `"}}`, func(context.Context, Request) (Response, error) {
			t.Error("fn called for an oversized envelope")
			return Response{}, nil
		}, 400, "larger than", "null"},
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(Handler(log, tt.fn))
			defer srv.Close()
			resp, err := http.Post(srv.URL+"/SyncProduct", "application/json", bytes.NewReader([]byte(tt.body)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.wantCode)
			}
			var got struct {
				Outputs     map[string]any
				Logs        []string
				ReturnValue json.RawMessage
			}
			if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
				t.Fatal(err)
			}
			if got.Outputs == nil || got.Logs == nil {
				t.Errorf("Outputs/Logs null: %+v", got)
			}
			if string(got.ReturnValue) != tt.wantRet {
				t.Errorf("ReturnValue %s, want %s", got.ReturnValue, tt.wantRet)
			}
			if tt.wantLog == "" && len(got.Logs) != 0 {
				t.Errorf("Logs %q, want none", got.Logs)
			}
			if tt.wantLog != "" && (len(got.Logs) != 1 || !strings.Contains(got.Logs[0], tt.wantLog)) {
				t.Errorf("Logs %q, want one containing %q", got.Logs, tt.wantLog)
			}
		})
	}
}
