package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// AzuriteKey is Azurite's well-known development account key (public, local only).
const AzuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// ConnString is the connection string for an Azurite at the given ports.
func ConnString(blob, queue, table int) string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"+
		"BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;QueueEndpoint=http://127.0.0.1:%d/devstoreaccount1;"+
		"TableEndpoint=http://127.0.0.1:%d/devstoreaccount1;", AzuriteKey, blob, queue, table)
}

// Azurite is an Azurite process of the test's own, which the test may stop
// and start again (on the same ports, keeping its data) to simulate an outage.
type Azurite struct {
	Blob, Queue, Table int
	dir, bin           string
	mu                 sync.Mutex
	cmd                *exec.Cmd
	t                  testing.TB
}

var (
	sharedOnce sync.Once
	sharedConn string
)

// Storage returns a connection string for a running Azurite: the one on the
// default ports (10000-10002) that `make test` starts, or else one started
// for this test process. Tests must use unique queue and table names.
func Storage(t testing.TB) string {
	t.Helper()
	if dial("127.0.0.1:10001") && dial("127.0.0.1:10002") {
		return ConnString(10000, 10001, 10002)
	}
	sharedOnce.Do(func() {
		// Deliberately not tied to t's cleanup: it serves the whole process.
		a := newAzurite(t, filepath.Join(os.TempDir(), "dualsync-azurite-"+RandomHex(4)))
		a.Start()
		sharedConn = a.ConnString()
	})
	if sharedConn == "" {
		t.Fatal("testenv: no Azurite available")
	}
	return sharedConn
}

// StartAzurite starts an Azurite of the test's own on free ports; it is
// stopped when the test ends.
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	a := newAzurite(t, t.TempDir())
	a.Start()
	t.Cleanup(a.Stop)
	return a
}

func newAzurite(t testing.TB, dir string) *Azurite {
	bin := filepath.Join(RepoRoot(t), "node_modules", ".bin", "azurite")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testenv: %s is missing; run `npm ci` (make test does)", bin)
	}
	return &Azurite{Blob: FreePort(t), Queue: FreePort(t), Table: FreePort(t), dir: dir, bin: bin, t: t}
}

// ConnString is the connection string for this instance.
func (a *Azurite) ConnString() string { return ConnString(a.Blob, a.Queue, a.Table) }

// Start launches the process (if it is not running) and waits until the queue
// and table endpoints accept connections.
func (a *Azurite) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		return
	}
	cmd := exec.Command(a.bin, "--silent", "--disableTelemetry", "--location", a.dir,
		"--blobPort", fmt.Sprint(a.Blob), "--queuePort", fmt.Sprint(a.Queue), "--tablePort", fmt.Sprint(a.Table))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("testenv: start azurite: %v", err)
	}
	a.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for !(dial(fmt.Sprintf("127.0.0.1:%d", a.Queue)) && dial(fmt.Sprintf("127.0.0.1:%d", a.Table))) {
		if time.Now().After(deadline) {
			a.t.Fatalf("testenv: azurite did not start within 30s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the process gracefully (so it flushes its data) and waits for
// its ports to close.
func (a *Azurite) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	a.cmd = nil
	for i := 0; i < 100 && dial(fmt.Sprintf("127.0.0.1:%d", a.Queue)); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}
