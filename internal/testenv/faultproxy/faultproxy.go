// Package faultproxy is an HTTP proxy in front of an Azure Storage endpoint
// (Azurite's tables or queues) that fails requests as the service does in
// production. It has no testing dependency, so cmd/bench can use it;
// internal/testenv wraps it for tests.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fault is what a FaultProxy does to one request, as Azure Storage fails in
// production: Microsoft documents that a request whose answer is lost may
// have been carried out, so three of the faults serve the request first.
type Fault int

const (
	FaultNone  Fault = iota
	FaultBusy        // 503 ServerBusy, the request not served (throttling)
	FaultDrop        // served, then the connection closed before the answer
	FaultFail        // served, then 500 InternalError instead of the answer
	FaultReset       // the connection reset before the request reaches storage
	FaultDelay       // served after a delay of up to FaultRates.MaxDelay
)

var faultNames = [...]string{"none", "busy", "drop", "fail", "reset", "delay"}

func (f Fault) String() string { return faultNames[f] }

// FaultRates are the chances (0..1) that a request meets each fault; they
// are tried in the order Busy, Drop, Fail, Reset, then Delay independently.
type FaultRates struct {
	Busy, Drop, Fail, Reset, Delay float64
	MaxDelay                       time.Duration
}

// FaultProxy is an HTTP proxy in front of one Azurite endpoint (tables or
// queues) that injects faults at random (seeded) rates, or once on the next
// request a rule matches. It counts what it did.
type FaultProxy struct {
	target string
	ln     net.Listener
	srv    *http.Server
	tr     *http.Transport

	mu     sync.Mutex
	rng    *rand.Rand
	rates  FaultRates
	match  func(*http.Request) bool // which requests the rates apply to (nil: all)
	script []scripted
	counts map[string]int // "<fault> <method> <kind>" and "requests"
}

type scripted struct {
	f     Fault
	match func(*http.Request) bool
}

// Start starts a proxy to target ("host:port") with no faults, listening
// on a free port of 127.0.0.1; Close stops it.
func Start(target string, seed uint64) (*FaultProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy listen: %w", err)
	}
	p := &FaultProxy{
		target: target, ln: ln,
		tr:     &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
		rng:    rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		counts: map[string]int{},
	}
	p.srv = &http.Server{Handler: p}
	go p.srv.Serve(ln)
	return p, nil
}

// Close stops the proxy.
func (p *FaultProxy) Close() {
	p.srv.Close()
	p.tr.CloseIdleConnections()
}

// Addr is the proxy's "127.0.0.1:port".
func (p *FaultProxy) Addr() string { return p.ln.Addr().String() }

// SetRates sets the random faults of the requests match accepts (nil: all);
// zero rates turn them off.
func (p *FaultProxy) SetRates(r FaultRates, match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rates, p.match = r, match
}

// Next injects f once, on the next request match accepts; rules queue up.
func (p *FaultProxy) Next(f Fault, match func(*http.Request) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.script = append(p.script, scripted{f, match})
}

// Pending reports how many scripted faults have not been injected yet.
func (p *FaultProxy) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.script)
}

// Counts returns how many requests met each fault, keyed "<fault>" and
// "<fault> <request kind>" (RequestKind), plus "requests" in all.
func (p *FaultProxy) Counts() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

// Report is Counts as sorted "key=n" lines.
func (p *FaultProxy) Report() string {
	c := p.Counts()
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d\n", k, c[k])
	}
	return b.String()
}

// Matchers for Next and SetRates.
var (
	// Writes are the requests that change storage.
	Writes = func(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }
	// Batches are entity-group transactions.
	Batches = func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/$batch") }
)

// Method matches requests of one method whose path contains sub.
func Method(method, sub string) func(*http.Request) bool {
	return func(r *http.Request) bool { return r.Method == method && strings.Contains(r.URL.Path, sub) }
}

// RequestKind names a request for the counts by method and what it
// addresses: "POST batch", "PUT entity", "POST messages", "DELETE message".
func RequestKind(r *http.Request) string {
	path := r.URL.Path
	what := "queue"
	switch {
	case strings.HasSuffix(path, "/$batch"):
		what = "batch"
	case strings.Contains(path, "/Tables"):
		what = "table"
	case strings.Contains(path, "("):
		what = "entity"
	case strings.Contains(path, "/messages/"):
		what = "message"
	case strings.HasSuffix(path, "/messages"):
		what = "messages"
	case strings.Count(strings.Trim(path, "/"), "/") == 1 && r.Header.Get("Accept") != "" && strings.Contains(r.Header.Get("Accept"), "json"):
		what = "entities" // an insert or query of a table
	}
	return r.Method + " " + what
}

func (p *FaultProxy) choose(r *http.Request) (Fault, time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts["requests"]++
	for i, s := range p.script {
		if s.match == nil || s.match(r) {
			p.script = slices.Delete(p.script, i, i+1)
			return s.f, 0
		}
	}
	if p.match != nil && !p.match(r) {
		return FaultNone, 0
	}
	rt := p.rates
	x := p.rng.Float64()
	for _, c := range []struct {
		f    Fault
		rate float64
	}{{FaultBusy, rt.Busy}, {FaultDrop, rt.Drop}, {FaultFail, rt.Fail}, {FaultReset, rt.Reset}} {
		if x < c.rate {
			return c.f, 0
		}
		x -= c.rate
	}
	if rt.MaxDelay > 0 && p.rng.Float64() < rt.Delay {
		return FaultDelay, time.Duration(p.rng.Int64N(int64(rt.MaxDelay)))
	}
	return FaultNone, 0
}

func (p *FaultProxy) count(f Fault, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[f.String()]++
	p.counts[f.String()+" "+RequestKind(r)]++
}

func (p *FaultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, delay := p.choose(r)
	if f != FaultNone {
		p.count(f, r)
	}
	switch f {
	case FaultBusy:
		storageError(w, r, http.StatusServiceUnavailable, "ServerBusy", "The server is busy.")
		return
	case FaultReset:
		io.Copy(io.Discard, r.Body)
		reset(w)
		return
	case FaultDelay:
		time.Sleep(delay)
	}
	out := r.Clone(r.Context())
	out.URL.Scheme, out.URL.Host, out.Host, out.RequestURI = "http", p.target, p.target, ""
	resp, err := p.tr.RoundTrip(out)
	if err != nil {
		storageError(w, r, http.StatusBadGateway, "ProxyError", err.Error())
		return
	}
	body, err := io.ReadAll(resp.Body) // served in full before any fault after it
	resp.Body.Close()
	if err != nil {
		reset(w)
		return
	}
	switch f {
	case FaultDrop:
		drop(w)
		return
	case FaultFail:
		storageError(w, r, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.")
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// storageError answers as the service does: JSON for tables (which ask for
// it), XML for queues, the code in x-ms-error-code either way.
func storageError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	io.Copy(io.Discard, r.Body)
	w.Header().Set("x-ms-error-code", code)
	var b bytes.Buffer
	if strings.Contains(r.Header.Get("Accept"), "json") || strings.Contains(r.Header.Get("Content-Type"), "multipart") {
		w.Header().Set("Content-Type", "application/json;odata=minimalmetadata;streaming=true;charset=utf-8")
		fmt.Fprintf(&b, `{"odata.error":{"code":%q,"message":{"lang":"en-US","value":%q}}}`, code, msg)
	} else {
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(&b, `<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code><Message>%s</Message></Error>`, code, msg)
	}
	w.WriteHeader(status)
	w.Write(b.Bytes())
}

// drop closes the connection without an answer (FIN): the client sees EOF.
func drop(w http.ResponseWriter) {
	if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
		c.Close()
	}
}

// reset closes the connection with a TCP RST: the client sees ECONNRESET.
func reset(w http.ResponseWriter) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// ViaFaultProxies rewrites connection string conn so that its table and
// queue endpoints go through the given proxies (nil: left as it is).
func ViaFaultProxies(conn string, tables, queues *FaultProxy) string {
	for _, c := range []struct {
		key string
		p   *FaultProxy
	}{{"TableEndpoint", tables}, {"QueueEndpoint", queues}} {
		if c.p == nil {
			continue
		}
		re := regexp.MustCompile(c.key + `=http://[^/]+/`)
		conn = re.ReplaceAllString(conn, c.key+"=http://"+c.p.Addr()+"/")
	}
	return conn
}

// Endpoint returns the "host:port" of one endpoint (TableEndpoint,
// QueueEndpoint) of connection string conn.
func Endpoint(conn, key string) (string, error) {
	m := regexp.MustCompile(key + `=http://([^/]+)/`).FindStringSubmatch(conn)
	if m == nil {
		return "", fmt.Errorf("no %s in the connection string", key)
	}
	return m[1], nil
}
