package devhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const maxRequestBody = 100 << 20 // the host's default request size limit (100 MB)

const reasonHostAPI = "This function was programmatically called via the host APIs."

// ServeHTTP routes a request: /admin/... to the admin API, then to the HTTP
// function whose route and method match, else 404.
func (h *Host) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.EscapedPath()
	if strings.HasPrefix(lower(path), "/admin/") {
		// The admin API is admin level: only the master key opens it.
		if h.opts.Keys != nil && !h.opts.Keys.allows(r, "", levelAdmin) {
			unauthorized(w)
			return
		}
		h.serveAdmin(w, r)
		return
	}
	segs, ok := pathSegments(path)
	if !ok {
		http.Error(w, "bad path", http.StatusBadRequest)
		return
	}
	for _, fn := range h.routes {
		params, ok := fn.route.match(segs)
		if !ok || (fn.methods != nil && !fn.methods[r.Method]) {
			continue
		}
		// As in the host: the route is matched first (404 stays 404), then
		// the key is checked, and a refused call never reaches the handler.
		if h.opts.Keys != nil && !h.opts.Keys.allows(r, fn.Name, fn.authLevel) {
			h.log.printf("Unauthorized call of 'Functions.%s' (authLevel %s): 401, not invoked.", fn.Name, fn.authLevel)
			unauthorized(w)
			return
		}
		h.serveFunction(w, r, fn, params)
		return
	}
	if path == "/" {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "devhost: your Functions app is up and running.\n")
		return
	}
	// No function's route and methods match: the host answers 404 with an
	// empty body, whatever the method (a method a route does not list fails
	// that route's constraint, so it is a 404 too, never a 405). The
	// handler never sees the request.
	w.WriteHeader(http.StatusNotFound)
}

func (h *Host) serveFunction(w http.ResponseWriter, r *http.Request, fn *function, params map[string]string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	// The invocation outlives a client that goes away, as in the host.
	ctx := context.WithoutCancel(r.Context())
	var written bool
	err = h.run(ctx, fn, reasonHostAPI, func(ctx context.Context, id string) error {
		if fn.Forward {
			return h.forward(ctx, w, r, body, id, &written)
		}
		return h.envelopeHTTP(ctx, w, r, fn, params, body, id, &written)
	})
	if err != nil && !written {
		// A failed invocation is a 500 for the caller (as the Azure host answers it).
		w.WriteHeader(http.StatusInternalServerError)
	}
}

var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// forward sends the original request to the handler at its original path
// (route prefix included) and relays the raw answer (https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers).
func (h *Host) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte, id string, written *bool) error {
	base, err := h.w.url(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header = r.Header.Clone()
	for _, k := range hopHeaders {
		req.Header.Del(k)
	}
	req.Host = r.Host
	h.setInvocationHeaders(req, id)
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("forward %s %s to the handler: %w", r.Method, r.URL.Path, err)
	}
	defer resp.Body.Close()
	// Read fully before answering so a timeout still yields a clean 500.
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read the handler's answer: %w", err)
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, k := range hopHeaders {
		w.Header().Del(k)
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(resp.StatusCode)
	*written = true
	_, _ = w.Write(out)
	return nil
}

// requestObject builds Data.<req> (the host's GetRequestAsJObject; https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers).
func requestObject(r *http.Request, params map[string]string, body []byte) map[string]any {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	query := map[string]any{}
	for k, vs := range r.URL.Query() {
		query[k] = strings.Join(vs, ",") // StringValues.ToString()
	}
	headers := map[string]any{}
	for k, vs := range r.Header {
		headers[k] = vs
	}
	if r.Host != "" {
		headers["Host"] = []string{r.Host}
	}
	obj := map[string]any{
		"Url":        scheme + "://" + r.Host + r.URL.RequestURI(),
		"Method":     r.Method,
		"Query":      query,
		"Headers":    headers,
		"Identities": []any{},
	}
	if len(params) > 0 {
		p := map[string]any{}
		for k, v := range params {
			p[k] = v
		}
		obj["Params"] = p
	}
	if len(body) > 0 {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt == "application/octet-stream" || strings.HasPrefix(mt, "multipart/") {
			obj["Body"] = base64.StdEncoding.EncodeToString(body)
		} else {
			obj["Body"] = string(body)
		}
	}
	return obj
}

func (h *Host) envelopeHTTP(ctx context.Context, w http.ResponseWriter, r *http.Request, fn *function, params map[string]string, body []byte, id string, written *bool) error {
	req := requestObject(r, params, body)
	data := map[string]any{fn.Trigger.Name: req}
	meta := map[string]any{"Query": req["Query"], "Headers": req["Headers"], "sys": sysMeta(fn)}
	for k, v := range params {
		meta[k] = scalar(v)
	}
	res, err := h.invokeEnvelope(ctx, fn, id, data, meta)
	if err != nil {
		return err
	}
	var httpOut *binding
	for _, o := range fn.Outputs {
		if o.Type == typeHTTP {
			httpOut = o
		}
	}
	var resp *httpResponse
	if httpOut != nil {
		if resp, err = parseHTTPOutput(res.output(httpOut.Name)); err != nil {
			return fmt.Errorf("output binding %q: %w", httpOut.Name, err)
		}
	}
	if err := h.writeOutputs(ctx, fn, res); err != nil {
		return err
	}
	*written = true
	if resp == nil {
		// [inference] Nothing set for the http output: an empty 200.
		w.WriteHeader(http.StatusOK)
		return nil
	}
	for k, v := range resp.headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(resp.body)
	return nil
}

type httpResponse struct {
	status  int
	headers map[string]string
	body    []byte
}

// parseHTTPOutput reads an http output value (HOST-RES GetHttpOutputBindingResponse):
// an object with statusCode (number or numeric string), headers and body.
func parseHTTPOutput(v json.RawMessage) (*httpResponse, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, errors.New("an http output must be an object with statusCode, headers and body")
	}
	get := func(name string) json.RawMessage {
		for k, x := range m {
			if strings.EqualFold(k, name) {
				return x
			}
		}
		return nil
	}
	out := &httpResponse{status: http.StatusOK, headers: map[string]string{}}
	code := get("statusCode")
	if code == nil {
		code = get("status")
	}
	if code != nil && string(code) != "null" {
		var n json.Number
		var s string
		switch {
		case json.Unmarshal(code, &n) == nil:
			s = n.String()
		case json.Unmarshal(code, &s) == nil:
		}
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 100 || c > 999 {
			return nil, fmt.Errorf("statusCode %s is not an HTTP status", code)
		}
		out.status = c
	}
	if hv := get("headers"); hv != nil && string(hv) != "null" {
		var hm map[string]any
		if err := json.Unmarshal(hv, &hm); err != nil {
			return nil, errors.New("headers must be an object")
		}
		for k, x := range hm {
			if s, ok := x.(string); ok {
				out.headers[k] = s
			} else {
				b, _ := json.Marshal(x)
				out.headers[k] = string(b)
			}
		}
	}
	hasCT := false
	for k := range out.headers {
		if strings.EqualFold(k, "Content-Type") {
			hasCT = true
		}
	}
	if b := bytes.TrimSpace(get("body")); len(b) > 0 && string(b) != "null" {
		if b[0] == '"' {
			var s string
			_ = json.Unmarshal(b, &s)
			out.body = []byte(s)
			if !hasCT {
				out.headers["Content-Type"] = "text/plain; charset=utf-8"
			}
		} else {
			// Objects and arrays are serialised as JSON by the host.
			out.body = b
			if !hasCT {
				out.headers["Content-Type"] = "application/json; charset=utf-8"
			}
		}
	}
	return out, nil
}

// serveAdmin implements the parts of the admin API that matter locally:
// POST /admin/functions/<Name> (manual run of a non-HTTP function) and
// GET /admin/host/status. Like Core Tools, no key is required unless the
// host was given keys (then the master key, checked in ServeHTTP).
func (h *Host) serveAdmin(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/admin/")
	switch {
	case strings.EqualFold(rest, "host/status") && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"state": "Running", "version": HostVersion})
		return
	case len(rest) > len("functions/") && strings.EqualFold(rest[:len("functions/")], "functions/") && r.Method == http.MethodPost:
		name := rest[len("functions/"):]
		fn, ok := h.byName[lower(name)]
		if !ok || fn.Disabled {
			http.Error(w, fmt.Sprintf("function %q not found", name), http.StatusNotFound)
			return
		}
		if fn.Trigger.Type == typeHTTPTrigger {
			http.Error(w, fmt.Sprintf("%s is an HTTP function: call its route instead", fn.Name), http.StatusBadRequest)
			return
		}
		var in struct {
			Input *string `json:"input"`
		}
		b, _ := io.ReadAll(io.LimitReader(r.Body, maxRequestBody))
		if len(bytes.TrimSpace(b)) > 0 {
			if err := json.Unmarshal(b, &in); err != nil {
				http.Error(w, `body must be {"input":"..."}`, http.StatusBadRequest)
				return
			}
		}
		select {
		case <-h.httpStop:
			http.Error(w, "host is shutting down", http.StatusServiceUnavailable)
			return
		default:
		}
		input := ""
		if in.Input != nil {
			input = *in.Input
		}
		h.inflight.Add(1)
		go func() {
			defer h.inflight.Done()
			h.manualRun(fn, input)
		}()
		w.WriteHeader(http.StatusAccepted) // the host answers 202 and runs it in the background
		return
	}
	http.NotFound(w, r)
}

func (h *Host) manualRun(fn *function, input string) {
	_ = h.run(context.Background(), fn, reasonHostAPI, func(ctx context.Context, id string) error {
		var data map[string]any
		switch fn.Trigger.Type {
		case typeTimerTrigger:
			data = map[string]any{fn.Trigger.Name: h.timerInfo(fn, time.Now(), time.Time{})}
		default:
			data = map[string]any{fn.Trigger.Name: scalar(input)}
		}
		res, err := h.invokeEnvelope(ctx, fn, id, data, map[string]any{"sys": sysMeta(fn)})
		if err != nil {
			return err
		}
		return h.writeOutputs(ctx, fn, res)
	})
}
