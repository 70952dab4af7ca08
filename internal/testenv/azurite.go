package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dualsync/devhost/childproc"
)

// AzuriteKey is Azurite's well-known development account key (public, local only).
const AzuriteKey = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

// PortsEnv names the variable that says where Storage looks for a running
// Azurite: "blob,queue,table" ports on 127.0.0.1 (default 10000,10001,10002),
// or "none" to always start one of the test process's own.
const PortsEnv = "DUALSYNC_AZURITE_PORTS"

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
	dir, bin           string // dir "" = in memory (no files, nothing to clean up)
	mu                 sync.Mutex
	cmd                *exec.Cmd
	t                  testing.TB
}

// running holds every Azurite this process started and has not stopped, so
// that Main can stop them all (process-wide on purpose: they are the test
// binary's children, whichever test started them).
var running = struct {
	sync.Mutex
	set map[*Azurite]bool
}{set: map[*Azurite]bool{}}

// processAzurite is the in-memory Azurite that ProcessStorage starts once.
var processAzurite struct {
	once sync.Once
	conn string
}

// Main runs the package's tests, stops every process testenv started for
// them and exits with the tests' code. A package whose tests use Storage,
// ProcessStorage or StartAzurite makes it its TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// On Linux the processes die with the test binary even without it (see
// childproc.Start); Main stops them gracefully and covers other systems.
func Main(m *testing.M) {
	code := m.Run()
	StopAll()
	os.Exit(code)
}

// StopAll stops every Azurite this process started and has not stopped.
func StopAll() {
	running.Lock()
	all := make([]*Azurite, 0, len(running.set))
	for a := range running.set {
		all = append(all, a)
	}
	running.Unlock()
	for _, a := range all {
		a.Stop()
	}
}

// Storage returns a connection string for a running Azurite: the one on the
// ports PortsEnv names (default 10000-10002, which `make test` starts), or
// else ProcessStorage's. Tests must use unique queue and table names.
func Storage(t testing.TB) string {
	t.Helper()
	ports, err := probePorts(os.Getenv(PortsEnv))
	if err != nil {
		t.Fatalf("testenv: %s: %v", PortsEnv, err)
	}
	if ports != nil && dial(fmt.Sprintf("127.0.0.1:%d", ports[1])) && dial(fmt.Sprintf("127.0.0.1:%d", ports[2])) {
		return ConnString(ports[0], ports[1], ports[2])
	}
	return ProcessStorage(t)
}

// ProcessStorage returns the connection string of an Azurite of this test
// process's own, started in memory on free ports at the first call and
// stopped by Main (or, on Linux, by the OS when the process dies).
func ProcessStorage(t testing.TB) string {
	t.Helper()
	processAzurite.once.Do(func() {
		// Not tied to t's cleanup: it serves the whole process.
		a := newAzurite(t, "")
		a.Start()
		processAzurite.conn = a.ConnString()
	})
	if processAzurite.conn == "" {
		t.Fatal("testenv: no Azurite available (its start failed in an earlier test)")
	}
	return processAzurite.conn
}

// probePorts parses PortsEnv's value: nil ports mean "none".
func probePorts(v string) ([]int, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return []int{10000, 10001, 10002}, nil
	case strings.EqualFold(v, "none"):
		return nil, nil
	}
	parts := strings.Split(v, ",")
	if len(parts) != 3 {
		return nil, fmt.Errorf(`want "blob,queue,table" ports or "none", got %q`, v)
	}
	ports := make([]int, 3)
	for i, p := range parts {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q is not a TCP port", p)
		}
		ports[i] = n
	}
	return ports, nil
}

// StartAzurite starts an Azurite of the test's own on free ports, keeping
// its data on disk so that it survives Stop and Start; it is stopped when
// the test ends.
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

// Pid is the process id while it runs, else 0.
func (a *Azurite) Pid() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Start launches the process (if it is not running) and waits until the queue
// and table endpoints accept connections.
func (a *Azurite) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd != nil {
		return
	}
	args := []string{"--silent", "--disableTelemetry",
		"--blobPort", fmt.Sprint(a.Blob), "--queuePort", fmt.Sprint(a.Queue), "--tablePort", fmt.Sprint(a.Table)}
	if a.dir == "" {
		args = append(args, "--inMemoryPersistence")
	} else {
		args = append(args, "--location", a.dir)
	}
	// azurite is a node script: exec keeps the pid, so the tie holds for node.
	cmd := exec.Command(a.bin, args...)
	if err := childproc.Start(cmd); err != nil {
		a.t.Fatalf("testenv: start azurite: %v", err)
	}
	a.cmd = cmd
	running.Lock()
	running.set[a] = true
	running.Unlock()
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
	running.Lock()
	delete(running.set, a)
	running.Unlock()
	for i := 0; i < 100 && dial(fmt.Sprintf("127.0.0.1:%d", a.Queue)); i++ {
		time.Sleep(50 * time.Millisecond)
	}
}
