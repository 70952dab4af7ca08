package devhost

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/testenv"
)

// TestMain stops the package's Azurite when the tests end.
func TestMain(m *testing.M) { testenv.Main(m) }

// azurite returns the connection string of an Azurite of this test binary's
// own (in memory, on free ports), started at the first call: devhost's tests
// do not share the machine's Azurite. testenv ties it to the test process.
func azurite(t testing.TB) string {
	t.Helper()
	return testenv.ProcessStorage(t)
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
