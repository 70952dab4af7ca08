package devhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
)

// TestMain stops the package's Azurite when the tests end.
func TestMain(m *testing.M) {
	code := m.Run()
	azuriteOnce.stop()
	os.Exit(code)
}

// repoRoot walks up to go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

func testFreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// azuriteProc is one Azurite for the whole test binary (tests use unique queue names).
type azuriteProc struct {
	once sync.Once
	cmd  *exec.Cmd
	dir  string
	conn string
	err  error
}

var azuriteOnce azuriteProc

func (a *azuriteProc) stop() {
	if a.cmd != nil {
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = a.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	if a.dir != "" {
		_ = os.RemoveAll(a.dir)
	}
}

// azurite starts (once) an Azurite of this package on free ports and returns
// its connection string.
func azurite(t testing.TB) string {
	t.Helper()
	a := &azuriteOnce
	a.once.Do(func() {
		bin := filepath.Join(repoRoot(t), "node_modules", ".bin", "azurite")
		if _, err := os.Stat(bin); err != nil {
			a.err = fmt.Errorf("%s is missing; run `npm ci`", bin)
			return
		}
		dir, err := os.MkdirTemp("", "devhost-azurite-")
		if err != nil {
			a.err = err
			return
		}
		a.dir = dir
		blob, queue, table := testFreePort(t), testFreePort(t), testFreePort(t)
		cmd := exec.Command(bin, "--silent", "--disableTelemetry", "--location", dir,
			"--blobPort", fmt.Sprint(blob), "--queuePort", fmt.Sprint(queue), "--tablePort", fmt.Sprint(table))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			a.err = err
			return
		}
		a.cmd = cmd
		deadline := time.Now().Add(30 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", queue), 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				a.err = fmt.Errorf("azurite did not start within 30s")
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		a.conn = strings.NewReplacer("10000", fmt.Sprint(blob), "10001", fmt.Sprint(queue), "10002", fmt.Sprint(table)).
			Replace(DevelopmentStorage)
	})
	if a.err != nil {
		t.Fatal(a.err)
	}
	return a.conn
}

var (
	handlerOnce sync.Once
	handlerBin  string
	handlerErr  error
)

// buildHandler builds testdata/handler once per test binary.
func buildHandler(t testing.TB) string {
	t.Helper()
	handlerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "devhost-handler-")
		if err != nil {
			handlerErr = err
			return
		}
		handlerBin = filepath.Join(dir, "handler")
		cmd := exec.Command("go", "build", "-o", handlerBin, "./testdata/handler")
		if out, err := cmd.CombinedOutput(); err != nil {
			handlerErr = fmt.Errorf("go build testdata/handler: %v\n%s", err, out)
		}
	})
	if handlerErr != nil {
		t.Fatal(handlerErr)
	}
	return handlerBin
}

// newApp copies testdata/apps/<name> to a temp dir and links the handler
// into it; further names are laid over the first (files of later ones win).
func newApp(t testing.TB, name string, more ...string) string {
	t.Helper()
	bin := buildHandler(t)
	dst := t.TempDir()
	for _, n := range append([]string{name}, more...) {
		src := filepath.Join("testdata", "apps", n)
		err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(src, p)
			target := filepath.Join(dst, rel)
			if info.IsDir() {
				return os.MkdirAll(target, 0o755)
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(bin, filepath.Join(dst, "handler")); err != nil {
		t.Fatal(err)
	}
	return dst
}

// recorder collects finished invocations.
type recorder struct {
	mu   sync.Mutex
	invs []Invocation
}

func (r *recorder) add(i Invocation) {
	r.mu.Lock()
	r.invs = append(r.invs, i)
	r.mu.Unlock()
}

func (r *recorder) of(fn string) []Invocation {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Invocation
	for _, i := range r.invs {
		if i.Function == fn {
			out = append(out, i)
		}
	}
	return out
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type running struct {
	h    *Host
	rec  *recorder
	log  *syncBuffer
	stop func() error // cancels Run and returns its result
}

// startHost loads dir with the given extra environment and runs it until the test ends.
func startHost(t *testing.T, dir string, env map[string]string, opts Options) *running {
	t.Helper()
	environ := os.Environ()
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	rec := &recorder{}
	logBuf := &syncBuffer{}
	opts.Environ = environ
	opts.ListenAddr = "127.0.0.1:0"
	opts.Stdout, opts.Stderr = logBuf, logBuf
	opts.OnInvocation = rec.add
	h, err := Load(dir, opts)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- h.Run(ctx) }()
	select {
	case <-h.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("Run: %v\n%s", err, logBuf.String())
	case <-time.After(60 * time.Second):
		cancel()
		t.Fatalf("host not ready\n%s", logBuf.String())
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-errc:
			case <-time.After(60 * time.Second):
				runErr = fmt.Errorf("Run did not return within 60s")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		_ = stop()
		if t.Failed() {
			t.Logf("devhost log:\n%s", logBuf.String())
		}
	})
	return &running{h: h, rec: rec, log: logBuf, stop: stop}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func uniqueQueue(prefix string) string {
	return prefix + "-" + strings.ReplaceAll(newID(), "-", "")[:12]
}

func queueOf(t *testing.T, conn, name string) *azqueue.QueueClient {
	t.Helper()
	q, err := azqueue.NewQueueClientFromConnectionString(conn, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Create(context.Background(), nil); err != nil && !strings.Contains(err.Error(), "QueueAlreadyExists") {
		t.Fatal(err)
	}
	return q
}

func enqueue(t *testing.T, q *azqueue.QueueClient, text string) {
	t.Helper()
	if _, err := q.EnqueueMessage(context.Background(), text, nil); err != nil {
		t.Fatal(err)
	}
}

// drain dequeues and deletes up to 32 visible messages and returns their raw texts.
func drain(t *testing.T, q *azqueue.QueueClient) []string {
	t.Helper()
	n := int32(32)
	resp, err := q.DequeueMessages(context.Background(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &n})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range resp.Messages {
		out = append(out, *m.MessageText)
		if _, err := q.DeleteMessage(context.Background(), *m.MessageID, *m.PopReceipt, nil); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// collect drains q until want messages arrived (or the timeout) and returns
// them base64-decoded.
func collect(t *testing.T, q *azqueue.QueueClient, want int, timeout time.Duration) []string {
	t.Helper()
	var got []string
	waitFor(t, timeout, fmt.Sprintf("%d message(s) in %s", want, q.URL()), func() bool {
		for _, m := range drain(t, q) {
			b, err := base64.StdEncoding.DecodeString(m)
			if err != nil {
				t.Fatalf("message %q is not base64: %v", m, err)
			}
			got = append(got, string(b))
		}
		return len(got) >= want
	})
	return got
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
