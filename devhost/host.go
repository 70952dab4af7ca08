// Package devhost is a local Azure Functions host for custom handlers: it
// reads host.json, local.settings.json and <Function>/function.json like the
// Functions host, starts the handler process and drives it over the
// custom-handler contract (HTTP, queue and timer triggers; http and queue
// outputs). See README.md for usage and how it differs from Azure.
package devhost

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"
)

// HostVersion is reported to the handler in X-Azure-Functions-HostVersion.
const HostVersion = "4.1037.0-devhost"

// Options adjust a Host. The zero value runs like `func start`.
type Options struct {
	// Port is the HTTP port; 0 means Host.LocalHttpPort from
	// local.settings.json, or 7071. Use ListenAddr for a random port.
	Port int
	// ListenAddr, if set, is the exact listen address (e.g. "127.0.0.1:0")
	// and wins over Port.
	ListenAddr string
	// Environ is the process environment ("K=V"); nil means os.Environ().
	// It wins over local.settings.json Values, as it does with Core Tools.
	Environ []string
	// Stdout receives the host's log and the handler's stdout, Stderr the
	// handler's stderr; nil means os.Stdout / os.Stderr.
	Stdout, Stderr io.Writer
	// StartTimeout bounds the handler's start-up; 0 means 30s.
	StartTimeout time.Duration
	// StopTimeout bounds draining and stopping on shutdown; 0 means
	// functionTimeout (capped at 1 minute) plus 10s for the handler.
	StopTimeout time.Duration
	// QueueLease is how long a dequeued message stays invisible while it is
	// processed, renewed at half that interval; 0 means the host's 10 minutes.
	// Tests lower it to show renewal.
	QueueLease time.Duration
	// OnInvocation, if set, is called after every invocation ends.
	OnInvocation func(Invocation)
	// Keys, if set, are enforced as the Azure host enforces authLevel: a
	// route that is not anonymous answers 401 without a matching key in
	// x-functions-key or ?code=. nil enforces nothing, as Core Tools does.
	Keys *Keys
}

// Invocation describes one finished function invocation.
type Invocation struct {
	Function string
	ID       string
	Reason   string
	Start    time.Time
	Duration time.Duration
	Err      error // nil when it succeeded
}

// Host is a loaded function app, ready to Run.
type Host struct {
	app  *app
	opts Options
	log  *logger
	w    *worker

	client *http.Client // to the handler

	routes []*function // HTTP functions in precedence order
	byName map[string]*function

	queues   *queueClients
	inflight sync.WaitGroup // queue, timer and admin invocations

	ready    chan struct{}
	addrMu   sync.Mutex
	addr     string
	httpStop chan struct{} // closed when the HTTP server stops taking work
}

// Load reads and validates the app in appDir. It fails with an error naming
// the file and field of any invalid configuration.
func Load(appDir string, opts Options) (*Host, error) {
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.StartTimeout <= 0 {
		// [conflict] CH-DOC says 60 s, the newest host code 30 s
		// (HttpWorkerOptions.InitializationTimeout); use the host's value.
		opts.StartTimeout = 30 * time.Second
	}
	if opts.QueueLease <= 0 {
		opts.QueueLease = 10 * time.Minute // QueueListener's visibility while processing
	}
	a, err := loadApp(appDir, opts.Environ)
	if err != nil {
		return nil, err
	}
	h := &Host{app: a, opts: opts, log: &logger{w: opts.Stdout}, client: newHandlerClient(), byName: map[string]*function{},
		ready: make(chan struct{}), httpStop: make(chan struct{})}
	// As Core Tools says it: a value in local.settings.json that the
	// environment overrides has no effect, and a user editing the file
	// should be told.
	for _, k := range a.skipped {
		h.log.printf("Skipping '%s' from local.settings.json as it's already defined in current environment variables.", k)
	}
	for _, fn := range a.functions {
		h.byName[lower(fn.Name)] = fn
		if fn.Trigger.Type == typeHTTPTrigger && !fn.Disabled {
			h.routes = append(h.routes, fn)
		}
	}
	sort.SliceStable(h.routes, func(i, j int) bool { return h.routes[i].route.less(h.routes[j].route) })
	h.queues = &queueClients{app: a, clients: map[string]*queueClient{}}
	h.w = &worker{app: a, log: h.log, stdout: opts.Stdout, stderr: opts.Stderr, startTimeout: opts.StartTimeout}
	return h, nil
}

// Ready is closed once the handler answers and the host serves HTTP and
// listens to its triggers.
func (h *Host) Ready() <-chan struct{} { return h.ready }

// Addr is the HTTP listen address ("127.0.0.1:7071"); valid after Ready.
func (h *Host) Addr() string {
	h.addrMu.Lock()
	defer h.addrMu.Unlock()
	return h.addr
}

// URL is the base URL of the HTTP server ("http://127.0.0.1:7071"); valid after Ready.
func (h *Host) URL() string { return "http://" + h.Addr() }

// Run starts the handler, serves HTTP and runs the triggers until ctx ends.
// On shutdown it stops polling queues and firing timers, lets in-flight
// invocations finish, then stops the handler. It returns nil after a clean
// shutdown.
func (h *Host) Run(ctx context.Context) error {
	addr := h.opts.ListenAddr
	if addr == "" {
		port := h.opts.Port
		if port == 0 {
			port = h.app.localPort
		}
		if port == 0 {
			port = 7071
		}
		addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	h.addrMu.Lock()
	h.addr = ln.Addr().String()
	h.addrMu.Unlock()

	if err := h.w.start(ctx); err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	trigCtx, stopTriggers := context.WithCancel(ctx)
	defer stopTriggers()
	var listeners sync.WaitGroup
	for _, fn := range h.app.functions {
		if fn.Disabled {
			h.log.printf("Function 'Functions.%s' is disabled.", fn.Name)
			continue
		}
		switch fn.Trigger.Type {
		case typeQueueTrigger:
			l, err := h.newQueueListener(trigCtx, fn)
			if err != nil {
				stopTriggers()
				listeners.Wait()
				_ = srv.Close()
				h.w.stop(10 * time.Second)
				return err
			}
			listeners.Go(func() { l.run(trigCtx) })
		case typeTimerTrigger:
			listeners.Go(func() { h.runTimer(trigCtx, fn) })
		}
	}
	h.printFunctions()
	if h.opts.Keys == nil {
		h.log.printf("Function keys are not enforced (no -keys file): every route is open, as with Core Tools locally. In Azure, routes that are not anonymous need a key.")
		if !isLoopback(h.Addr()) {
			h.log.printf("Warning: listening on %s without keys: anyone who reaches this address can call every route and the admin API.", h.Addr())
		}
	} else {
		h.log.printf("Function keys enforced (authLevel): %s.", h.opts.Keys.summary())
	}
	close(h.ready)

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		stopTriggers()
		listeners.Wait()
		h.inflight.Wait()
		h.w.stop(10 * time.Second)
		return fmt.Errorf("http server: %w", err)
	}

	h.log.printf("Shutting down: no new invocations; waiting for running ones to finish.")
	grace := h.opts.StopTimeout
	if grace <= 0 {
		grace = min(h.app.timeout, time.Minute)
		if grace == 0 {
			grace = time.Minute
		}
		grace += 10 * time.Second
	}
	stopTriggers()
	close(h.httpStop)
	shutCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	shutErr := srv.Shutdown(shutCtx) // waits for in-flight HTTP invocations
	listeners.Wait()                 // pollers stopped: no new queue/timer invocations
	drained := make(chan struct{})
	go func() { h.inflight.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-shutCtx.Done():
		h.log.printf("Some invocations did not finish within %v; stopping anyway (their queue messages become visible again).", grace)
	}
	h.w.stop(10 * time.Second)
	h.log.printf("Host stopped.")
	if shutErr != nil && !errors.Is(shutErr, context.DeadlineExceeded) {
		return shutErr
	}
	return nil
}

func (h *Host) printFunctions() {
	h.log.printf("Functions:")
	for _, fn := range h.app.functions {
		if fn.Disabled {
			continue
		}
		switch fn.Trigger.Type {
		case typeHTTPTrigger:
			mode := "envelope"
			if fn.Forward {
				mode = "forwarded"
			}
			// A URL one can open (Core Tools prints the template, e.g.
			// .../{*path}); the template follows when it says more.
			if u := fn.route.openable(); u != fn.route.template {
				h.log.printf("        %s: [%s] %s/%s (route %s, %s)", fn.Name, fn.methodList(), h.URL(), u, fn.route.template, mode)
			} else {
				h.log.printf("        %s: [%s] %s/%s (%s)", fn.Name, fn.methodList(), h.URL(), u, mode)
			}
		case typeQueueTrigger:
			h.log.printf("        %s: queueTrigger (%s)", fn.Name, fn.Trigger.QueueName)
		case typeTimerTrigger:
			h.log.printf("        %s: timerTrigger (%s)", fn.Name, fn.timer.expr)
		}
	}
	// The Azure host's wording for functions it could not index, plus what
	// it means here: they are disabled, the others run.
	if len(h.app.broken) > 0 {
		h.log.printf("The following %d functions are in error and disabled:", len(h.app.broken))
		for _, fe := range h.app.broken {
			h.log.printf("        %s: %v", fe.Name, fe.Err)
		}
	}
}

// run wraps one invocation with the host's start/end log lines, the
// function timeout and the OnInvocation callback.
func (h *Host) run(ctx context.Context, fn *function, reason string, body func(ctx context.Context, id string) error) error {
	id := newID()
	start := time.Now()
	info := h.app.functionLogs(fn.Name, levelInformation)
	if info {
		h.log.printf("Executing 'Functions.%s' (Reason='%s', Id=%s)", fn.Name, reason, id)
	}
	if h.app.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, h.app.timeout, errFunctionTimeout)
		defer cancel()
	}
	err := body(ctx, id)
	if err != nil && context.Cause(ctx) == errFunctionTimeout {
		err = fmt.Errorf("Timeout value of %s was exceeded by function: Functions.%s", formatTimeSpan(h.app.timeout), fn.Name)
	}
	d := time.Since(start)
	switch {
	case err != nil && h.app.functionLogs(fn.Name, levelError):
		h.log.printf("Executed 'Functions.%s' (Failed, Id=%s, Duration=%dms)", fn.Name, id, d.Milliseconds())
		h.log.printf("  Error: %v", err)
	case err == nil && info:
		h.log.printf("Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%dms)", fn.Name, id, d.Milliseconds())
	}
	if h.opts.OnInvocation != nil {
		h.opts.OnInvocation(Invocation{Function: fn.Name, ID: id, Reason: reason, Start: start, Duration: d, Err: err})
	}
	return err
}

var errFunctionTimeout = errors.New("function timeout")

// logger writes timestamped lines like Core Tools' console output.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *logger) printf(format string, args ...any) {
	line := fmt.Sprintf("[%s] %s\n", time.Now().UTC().Format("2006-01-02T15:04:05.000Z"), fmt.Sprintf(format, args...))
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, line)
}

// newID returns a random (version 4) UUID.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func sysMeta(fn *function) map[string]any {
	return map[string]any{
		"MethodName": fn.Name,
		"UtcNow":     dotnetTime(time.Now().UTC()),
		"RandGuid":   newID(),
	}
}
