// Package invoke holds the custom-handler invocation envelope for non-HTTP
// triggers: the host POSTs {"Data","Metadata"} to /<FunctionName> and reads
// {"Outputs","Logs","ReturnValue"} back
// (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers).
//
// Decoding is deliberately tolerant: the real host double-encodes strings
// (queue message text arrives as a JSON string holding a JSON string), some
// tools send the message once-encoded or as a parsed object, and a
// messageEncoding mismatch leaves the text base64. Bind accepts all of them.
package invoke

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"

	"dualsync/internal/domain"
)

// MaxBody is the largest invocation body Decode accepts. A queue message is at
// most 64 KiB, so 1 MiB leaves room for base64, double encoding and metadata
// (the host copies a JSON message's properties into Metadata too).
const MaxBody = 1<<20 + 64<<10

// maxLayers bounds how many string encodings Bind and MetaString peel off;
// two is what the host produces, a few more cost nothing and stop loops.
const maxLayers = 4

// Request is one invocation from the host.
type Request struct {
	Data     map[string]json.RawMessage
	Metadata map[string]json.RawMessage
}

// envelope mirrors the wire shape; json matches the keys case-insensitively.
type envelope struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

// Decode reads an invocation body of at most MaxBody bytes. The body must be
// one JSON object; Data and Metadata may be absent (empty maps then).
func Decode(r io.Reader) (Request, error) {
	body, err := io.ReadAll(io.LimitReader(r, MaxBody+1))
	if err != nil {
		return Request{}, domain.Wrap(domain.KindInvalid, err, "read the invocation body")
	}
	if len(body) > MaxBody {
		return Request{}, domain.Errorf(domain.KindInvalid, "the invocation body is larger than %d bytes", MaxBody)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Request{}, domain.Errorf(domain.KindInvalid, "the invocation body must be a JSON object with Data and Metadata")
	}
	var env envelope
	if err := json.Unmarshal(trimmed, &env); err != nil {
		return Request{}, domain.Wrap(domain.KindInvalid, err, "the invocation body is not a valid envelope")
	}
	if env.Data == nil {
		env.Data = map[string]json.RawMessage{}
	}
	if env.Metadata == nil {
		env.Metadata = map[string]json.RawMessage{}
	}
	return Request{Data: env.Data, Metadata: env.Metadata}, nil
}

// Bind decodes binding name into v. Accepted forms: a JSON object or array
// (decoded directly); a JSON string, possibly holding further JSON strings,
// whose content is JSON (decoded from that content); a string that is base64
// of JSON (host messageEncoding mismatch); and scalars, decoded as they are
// (so a plain-text message binds to a *string). A missing or null binding, or
// one that does not decode into v, is a KindInvalid error naming the binding.
func (r Request) Bind(name string, v any) error {
	raw, ok := r.Data[name]
	if !ok || isNull(raw) {
		return domain.Errorf(domain.KindInvalid, "binding %q is missing", name)
	}
	if err := bindRaw(raw, v); err != nil {
		return domain.Wrap(domain.KindInvalid, err, "binding "+strconv.Quote(name)+" cannot be decoded")
	}
	return nil
}

func bindRaw(raw json.RawMessage, v any) error {
	cur := bytes.TrimSpace(raw)
	for range maxLayers {
		if len(cur) == 0 || cur[0] != '"' {
			if isNull(cur) {
				return errors.New("the value is null")
			}
			return json.Unmarshal(cur, v) // object, array, number or bool
		}
		var s string
		if err := json.Unmarshal(cur, &s); err != nil {
			return err
		}
		inner := []byte(strings.TrimSpace(s))
		if next, ok := nestedJSON(inner); ok {
			cur = next
			continue
		}
		// A plain string: bind it as a string, or, when v wants a number or
		// bool and the string holds one ("42"), as that scalar.
		err := json.Unmarshal(cur, v)
		if err != nil && len(inner) > 0 && json.Valid(inner) {
			if err2 := json.Unmarshal(inner, v); err2 == nil {
				return nil
			}
		}
		return err
	}
	return errors.New("the value is encoded too many times")
}

// nestedJSON reports whether the content of a JSON string is itself JSON that
// Bind should descend into: an object, an array, another string, or base64
// of an object or array.
func nestedJSON(s []byte) ([]byte, bool) {
	if len(s) == 0 {
		return nil, false
	}
	switch s[0] {
	case '{', '[', '"':
		if json.Valid(s) {
			return s, true
		}
		return nil, false
	}
	// Only base64 that decodes to an object or array counts: plain words
	// such as "test" are valid base64 too and must stay strings.
	dec, err := base64.StdEncoding.DecodeString(string(s))
	if err != nil {
		return nil, false
	}
	dec = bytes.TrimSpace(dec)
	if len(dec) > 0 && (dec[0] == '{' || dec[0] == '[') && json.Valid(dec) {
		return dec, true
	}
	return nil, false
}

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

// DequeueCount returns Metadata.DequeueCount, sent as a number or as a
// numeric string (once or twice encoded); 0 if absent, negative or not an
// integer.
func (r Request) DequeueCount() int {
	s := r.MetaString("DequeueCount")
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0
	}
	return int(n)
}

// MetaString returns a scalar metadata value as a string with every layer of
// string encoding removed (the host sends Id as "\"abc\""); numbers and
// bools come back as their JSON text. Absent, null, objects and arrays give "".
func (r Request) MetaString(key string) string {
	raw, ok := r.Metadata[key]
	if !ok {
		return ""
	}
	cur := bytes.TrimSpace(raw)
	if len(cur) == 0 || cur[0] == '{' || cur[0] == '[' || isNull(cur) {
		return ""
	}
	if cur[0] != '"' {
		return string(cur)
	}
	var s string
	for range maxLayers {
		if err := json.Unmarshal(cur, &s); err != nil {
			return ""
		}
		next := bytes.TrimSpace([]byte(s))
		if len(next) == 0 || next[0] != '"' || !json.Valid(next) {
			return s
		}
		cur = next
	}
	return s
}

// TimerInfo is Data.<timer> of a timer trigger (custom handler request payload). Times stay
// strings: the host can send year-1 or offset-less values that time.Time's
// RFC 3339 parser rejects, and dualsync only logs them.
type TimerInfo struct {
	Schedule       json.RawMessage `json:"Schedule"`
	ScheduleStatus *ScheduleStatus `json:"ScheduleStatus"` // nil when the host does not monitor the schedule
	IsPastDue      bool            `json:"IsPastDue"`
}

// ScheduleStatus is TimerInfo.ScheduleStatus; Last and LastUpdated can be
// "0001-01-01T00:00:00" on a first run.
type ScheduleStatus struct {
	Last        string `json:"Last"`
	Next        string `json:"Next"`
	LastUpdated string `json:"LastUpdated"`
}

// Response is the handler's answer.
type Response struct {
	Outputs     map[string]any `json:"Outputs"`
	Logs        []string       `json:"Logs"`
	ReturnValue any            `json:"ReturnValue"`
}

// Write writes resp as JSON with the status. Outputs and Logs are never null
// ({} and []), and the content type is set explicitly: the host rejects a
// sniffed text/plain answer.
func Write(w http.ResponseWriter, status int, resp Response) {
	if resp.Outputs == nil {
		resp.Outputs = map[string]any{}
	}
	if resp.Logs == nil {
		resp.Logs = []string{}
	}
	body, err := json.Marshal(resp)
	if err != nil {
		// An output the handler built cannot be encoded: that is a failed
		// invocation, and the host must still get a JSON object.
		status = http.StatusInternalServerError
		body, _ = json.Marshal(Response{Outputs: map[string]any{}, Logs: []string{"encode the invocation response: " + err.Error()}})
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
