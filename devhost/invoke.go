package devhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

func lower(s string) string { return strings.ToLower(s) }

// invokeResult is the handler's answer (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers).
type invokeResult struct {
	Outputs     map[string]json.RawMessage `json:"Outputs"`
	Logs        []json.RawMessage          `json:"Logs"`
	ReturnValue json.RawMessage            `json:"ReturnValue"`
}

// output returns the value of an output binding: Outputs[name], or
// ReturnValue for "$return". Output names match case-insensitively.
func (r *invokeResult) output(name string) json.RawMessage {
	if name == "$return" {
		return r.ReturnValue
	}
	if v, ok := r.Outputs[name]; ok {
		return v
	}
	for k, v := range r.Outputs {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// scalar encodes a string (or number/bool) binding value the way the host
// does for custom handlers (HOST-CTX rule 4): JsonConvert.SerializeObject, so
// the value is JSON text inside the JSON document: "abc" travels as "\"abc\""
// and 1 as "1".
func scalar(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// newHandlerClient returns the client for calls to the handler.
func newHandlerClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Every HTTP invocation and queue message is a call to the same
	// handler: keep as many connections idle as run at once (the default of
	// 2 per host closed and re-dialled one per call under load).
	t.MaxIdleConnsPerHost = 1024
	return &http.Client{
		Transport: t,
		// Forwarded requests must not follow redirects (HOST: AllowAutoRedirect = !EnableForwardingHttpRequest).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func (h *Host) setInvocationHeaders(req *http.Request, id string) {
	req.Header.Set("X-Azure-Functions-InvocationId", id)
	req.Header.Set("X-Azure-Functions-HostVersion", HostVersion)
	req.Header.Set("User-Agent", "Azure-Functions-Host/"+HostVersion)
}

// invokeEnvelope POSTs {"Data","Metadata"} to /<FunctionName> and decodes the
// answer. Any non-2xx status is a failure (HOST EnsureSuccessStatusCode).
func (h *Host) invokeEnvelope(ctx context.Context, fn *function, id string, data, meta map[string]any) (*invokeResult, error) {
	base, err := h.w.url(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]any{"Data": data, "Metadata": meta})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/"+fn.Name, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	h.setInvocationHeaders(req, id)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST /%s to the handler: %w", fn.Name, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("read the handler's answer to POST /%s: %w", fn.Name, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, fmt.Errorf("Response status code does not indicate success: %d (%s) from POST /%s: %s",
			resp.StatusCode, http.StatusText(resp.StatusCode), fn.Name, snippet(raw))
	}
	// I-6462: the host reads the answer with a JSON formatter only.
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, fmt.Errorf("the handler answered POST /%s with Content-Type %q; the host needs application/json "+
			"(No MediaTypeFormatter is available to read an object of type 'HttpScriptInvocationResult')", fn.Name, resp.Header.Get("Content-Type"))
	}
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		// [inference] The Azure host would wait for functionTimeout here; devhost
		// fails at once so the mistake is visible.
		return nil, fmt.Errorf("the handler answered POST /%s with an empty body; send at least {} (in Azure this invocation would hang until functionTimeout)", fn.Name)
	}
	var res invokeResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, fmt.Errorf("the handler's answer to POST /%s is not an invocation result object: %v", fn.Name, err)
	}
	for _, l := range res.Logs {
		var s string
		if json.Unmarshal(l, &s) != nil {
			s = string(l)
		}
		h.log.printf("%s: %s", fn.Name, s)
	}
	return &res, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// writeOutputs sends every queue output binding's value.
func (h *Host) writeOutputs(ctx context.Context, fn *function, res *invokeResult) error {
	for _, o := range fn.Outputs {
		if o.Type != typeQueue {
			continue
		}
		msgs, err := h.queueMessages(fn, o, res.output(o.Name))
		if err != nil {
			return fmt.Errorf("output binding %q: %w", o.Name, err)
		}
		if len(msgs) == 0 {
			continue
		}
		for _, m := range msgs {
			if err := h.queues.enqueue(ctx, h.log, o.Connection, o.QueueName, h.encodeMessage(m)); err != nil {
				return fmt.Errorf("output binding %q: enqueue to %s: %w", o.Name, o.QueueName, err)
			}
		}
	}
	return nil
}

// queueMessages turns an output value into message bodies (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers):
// a string is one message, an array (or a string holding a JSON array) one
// message per element, an object its JSON text.
func (h *Host) queueMessages(fn *function, o *binding, v json.RawMessage) ([][]byte, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	switch v[0] {
	case '[':
		var items []json.RawMessage
		if err := json.Unmarshal(v, &items); err != nil {
			return nil, err
		}
		var out [][]byte
		for _, it := range items {
			m, err := h.queueMessages(fn, o, it)
			if err != nil {
				return nil, err
			}
			out = append(out, m...)
		}
		return out, nil
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, err
		}
		if t := strings.TrimSpace(s); strings.HasPrefix(t, "[") && json.Valid([]byte(t)) {
			return h.queueMessages(fn, o, json.RawMessage(t)) // HOST-FB ReadAsEnumerable
		}
		if o.DataType != "binary" {
			// HOST-RES GetBindingValue tries Convert.FromBase64String on string
			// outputs first: a string that happens to be valid base64 is sent
			// as the decoded bytes. devhost reproduces this and warns.
			if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(s) > 0 {
				h.log.printf("Warning: %s output %q: %q is valid base64, so the host sends its decoded bytes, not the text (emit JSON objects to avoid this).", fn.Name, o.Name, s)
				return [][]byte{b}, nil
			}
		}
		return [][]byte{[]byte(s)}, nil
	case '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, err
		}
		return [][]byte{buf.Bytes()}, nil
	default: // number, bool
		return [][]byte{append([]byte(nil), v...)}, nil
	}
}

// encodeMessage applies extensions.queues.messageEncoding.
func (h *Host) encodeMessage(b []byte) string {
	if h.app.queues.MessageEncoding == "none" {
		return string(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}
