package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// bench owns what the run creates, so cleanup can undo it on any exit path.
type bench struct {
	cfg  config
	work string
	log  io.Writer
	out  io.Writer

	// directStorage is the handler's storage when measured straight;
	// azurite and azuriteDirect are the private Azurites (nil if shared).
	directStorage          string
	azurite, azuriteDirect *proc

	mu      sync.Mutex
	dbs     []string
	procs   []*proc
	proxies []*delayProxy
}

// adminURL mirrors internal/testenv.AdminURL (which imports "testing").
func adminURL() string {
	if u := os.Getenv("DUALSYNC_PG_ADMIN_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *bench) logf(format string, a ...any) {
	fmt.Fprintf(b.out, "bench: "+format+"\n", a...)
}

// startAzurite runs the project's Azurite (node_modules, as `make services`
// does) on free ports in the work dir and returns its connection string.
// The bench uses an Azurite of its own because the queue names are fixed by
// function.json: any other devhost on the shared Azurite would take (and
// settle against its own databases) the bench's sync messages.
func (b *bench) startAzurite(ctx context.Context, name string, inMemory bool) (string, *proc, error) {
	bin := filepath.Join("node_modules", ".bin", "azurite")
	if _, err := os.Stat(bin); err != nil {
		return "", nil, fmt.Errorf("%s is missing: run `npm ci` (make services does)", bin)
	}
	var ports [3]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return "", nil, err
		}
		ports[i] = p
	}
	args := []string{"--silent", "--disableTelemetry", "--location", filepath.Join(b.work, name)}
	if inMemory {
		args = []string{"--silent", "--disableTelemetry", "--inMemoryPersistence"}
	}
	pr, err := b.start(ctx, name, bin, append(args,
		"--blobPort", strconv.Itoa(ports[0]), "--queuePort", strconv.Itoa(ports[1]), "--tablePort", strconv.Itoa(ports[2])), nil)
	if err != nil {
		return "", nil, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for !dial(ports[1]) || !dial(ports[2]) {
		select {
		case <-pr.done:
			return "", nil, errors.New("azurite exited at start")
		case <-ctx.Done():
			return "", nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return "", nil, errors.New("azurite did not start within 60s")
		}
	}
	const key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==" // Azurite's public development key
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=%s;"+
		"BlobEndpoint=http://127.0.0.1:%d/devstoreaccount1;QueueEndpoint=http://127.0.0.1:%d/devstoreaccount1;"+
		"TableEndpoint=http://127.0.0.1:%d/devstoreaccount1;", key, ports[0], ports[1], ports[2]), pr, nil
}

func dial(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// createDB makes an empty database and returns its URL; cleanup drops it.
func (b *bench) createDB(ctx context.Context, tag string) (string, error) {
	conn, err := pgx.Connect(ctx, b.cfg.AdminURL)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL is not reachable (run `make services`): %w", err)
	}
	defer conn.Close(ctx)
	name := "dualsync_bench_" + randomHex(4) + "_" + tag
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	b.mu.Lock()
	b.dbs = append(b.dbs, name)
	b.mu.Unlock()
	u, err := url.Parse(b.cfg.AdminURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func (b *bench) dropDBs(ctx context.Context, names []string) {
	conn, err := pgx.Connect(ctx, b.cfg.AdminURL)
	if err != nil {
		fmt.Fprintf(b.out, "bench: drop databases: %v\n", err)
		return
	}
	defer conn.Close(ctx)
	for _, n := range names {
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(b.out, "bench: drop %s: %v\n", n, err)
		}
	}
}

// cleanup stops every process and drops every database the run made. It
// runs on a fresh context: the run's own may already be cancelled (Ctrl-C).
func (b *bench) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b.mu.Lock()
	procs, dbs, proxies := b.procs, b.dbs, b.proxies
	b.procs, b.dbs, b.proxies = nil, nil, nil
	b.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	for _, px := range proxies {
		px.Close()
	}
	b.dropDBs(ctx, dbs)
}

// pair is the primary and fallback database of one measurement.
type pair struct{ Primary, Fallback string }

// newPair creates two databases, migrates them with the handler binary and
// loads n products into both.
func (b *bench) newPair(ctx context.Context, n int) (pair, error) {
	var p pair
	var err error
	if p.Primary, err = b.createDB(ctx, "p"); err != nil {
		return p, err
	}
	if p.Fallback, err = b.createDB(ctx, "f"); err != nil {
		return p, err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.Bin, "handler"), "migrate")
	cmd.Env = append(os.Environ(), "PRIMARY_DATABASE_URL="+p.Primary, "FALLBACK_DATABASE_URL="+p.Fallback, "SyncStorage="+b.cfg.Storage)
	if out, err := cmd.CombinedOutput(); err != nil {
		return p, fmt.Errorf("handler migrate: %w: %s", err, out)
	}
	if err := loadProducts(ctx, p, n); err != nil {
		return p, err
	}
	return p, nil
}

// loadProducts inserts the same n products in both databases, as if
// already synced: ids 1, 3, ... (the primary's odd ids), and moves the
// primary's sequence past them so API creates do not collide.
func loadProducts(ctx context.Context, p pair, n int) error {
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	for _, u := range []string{p.Primary, p.Fallback} {
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, `INSERT INTO products (id, name, description, price, created_at, updated_at, name_at, description_at, price_at)
			SELECT 2*g-1, 'Bench product ' || g, 'Loaded by cmd/bench', (g % 1000) + 0.99, $2, $2, $2, $2, $2
			FROM generate_series(1, $1::int) AS g`, n, base)
		if err == nil && u == p.Primary {
			_, err = conn.Exec(ctx, "SELECT setval('products_id_seq', $1::bigint)", int64(2*n-1))
		}
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("load products: %w", err)
		}
	}
	return nil
}

// proc is a child process (handler or devhost) in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	once sync.Once
}

func (b *bench) start(ctx context.Context, name, bin string, args, env []string) (*proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = b.log, b.log
	// Own process group: stop() can end the process and anything it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	b.mu.Lock()
	b.procs = append(b.procs, p)
	b.mu.Unlock()
	return p, nil
}

// stop sends SIGTERM (devhost then stops its handler), SIGKILL after 30s.
// devhost puts its handler in a process group of its own, so the children
// found before signalling are killed too if they outlive their parent.
func (p *proc) stop() {
	p.once.Do(func() {
		kids := childPIDs(p.cmd.Process.Pid)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
		for _, k := range kids {
			_ = syscall.Kill(-k, syscall.SIGKILL) // its group, if it leads one
			_ = syscall.Kill(k, syscall.SIGKILL)
		}
	})
}

// waitHTTP polls url until it answers with want, the process dies or the
// timeout passes.
func waitHTTP(ctx context.Context, p *proc, url string, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before answering %s", p.name, url)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s with %d within %s", p.name, url, want, timeout)
		}
	}
}

func (b *bench) dbEnv(p pair, storage string) []string {
	return append([]string{
		"PRIMARY_DATABASE_URL=" + p.Primary,
		"FALLBACK_DATABASE_URL=" + p.Fallback,
		"SyncStorage=" + storage,
		"AzureWebJobsStorage=" + storage,
		"LOG_LEVEL=warn",
	}, b.cfg.AppEnv...) // later entries win
}

// startHandler runs bin/handler directly on storage and returns its base URL.
func (b *bench) startHandler(ctx context.Context, p pair, storage string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	env := append(b.dbEnv(p, storage), "FUNCTIONS_CUSTOMHANDLER_PORT="+strconv.Itoa(port))
	pr, err := b.start(ctx, "handler", filepath.Join(b.cfg.Bin, "handler"), nil, env)
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return pr, base, waitHTTP(ctx, pr, base+"/", http.StatusOK, 30*time.Second)
}

// appDir lays the app out as the Makefile's `app` target does.
func (b *bench) appDir() (string, error) {
	dir := filepath.Join(b.work, "app")
	if _, err := os.Stat(filepath.Join(dir, "host.json")); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range [][2]string{{"host.json", "host.json"}, {"local.settings.json", "local.settings.json"}, {filepath.Join(b.cfg.Bin, "handler"), "handler"}} {
		if err := copyFile(f[0], filepath.Join(dir, f[1])); err != nil {
			return "", err
		}
	}
	if err := os.CopyFS(dir, os.DirFS("functions")); err != nil {
		return "", fmt.Errorf("copy functions: %w", err)
	}
	return dir, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// startDevhost runs bin/devhost on the laid-out app; environment variables
// win over local.settings.json Values there.
func (b *bench) startDevhost(ctx context.Context, p pair) (*proc, string, error) {
	return b.startDevhostOn(ctx, p, b.cfg.Storage)
}

// startDevhostOn is startDevhost with the storage connection string given
// and extra settings (KEY=VALUE, winning over the others).
func (b *bench) startDevhostOn(ctx context.Context, p pair, storage string, extra ...string) (*proc, string, error) {
	dir, err := b.appDir()
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	pr, err := b.start(ctx, "devhost", filepath.Join(b.cfg.Bin, "devhost"), []string{"-port", strconv.Itoa(port), dir}, append(b.dbEnv(p, storage), extra...))
	if err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	return pr, base, waitHTTP(ctx, pr, base+"/admin/host/status", http.StatusOK, 60*time.Second)
}

// childPID finds the process whose parent is ppid (devhost's handler).
func childPID(ppid int) (int, error) {
	if kids := childPIDs(ppid); len(kids) > 0 {
		return kids[0], nil
	}
	return 0, fmt.Errorf("no child process of %d", ppid)
}

// childPIDs lists the processes whose parent is ppid.
func childPIDs(ppid int) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if parent, ok := parsePPID(string(st)); ok && parent == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// parsePPID reads field 4 of /proc/<pid>/stat; the command name (field 2)
// is parenthesised and may hold spaces, so fields are counted after ')'.
func parsePPID(stat string) (int, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 2 {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	return n, err == nil
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// cpuTime returns the CPU time (user + system) a process has used so far.
func cpuTime(pid int) (time.Duration, error) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseCPUTime(string(st))
}

// parseCPUTime reads utime and stime, fields 14 and 15 of /proc/<pid>/stat,
// counted after the parenthesised command name as in parsePPID.
func parseCPUTime(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected stat %q", stat)
	}
	f := strings.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected stat %q", stat)
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected stat %q", stat)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// vmHWM returns a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return parseVmHWM(f)
}

// parseVmHWM reads the "VmHWM:   12345 kB" line of /proc/<pid>/status.
func parseVmHWM(r io.Reader) (int64, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		line := s.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			if err != nil {
				return 0, err
			}
			return kb * 1024, nil
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmHWM line")
}
