// Package scripts holds the tests of the shell scripts beside it.
package scripts

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"dualsync/internal/testenv"
)

// devSh runs scripts/dev.sh with the given overrides (which keep it off the
// shared services) and returns its output; it fails the test on a non-zero exit.
func devSh(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(t), "scripts", "dev.sh"), args...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("dev.sh %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 300*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// stateLines reads a state file ("" if there is none).
func stateLines(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "services"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStopStopsWhatDevShStartedOnly: `dev.sh stop` (make stop) stops the
// Azurite dev.sh started, and not one that was already running when dev.sh
// looked (as another checkout's would be), nor a process that took a
// recorded pid.
func TestStopStopsWhatDevShStartedOnly(t *testing.T) {
	dir := t.TempDir()
	blob, queue, table := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	common := map[string]string{
		"DEV_AZURITE_PORTS": fmt.Sprintf("%d,%d,%d", blob, queue, table),
		"DEV_AZURITE_DIR":   filepath.Join(dir, "azurite"),
	}
	with := func(state string) map[string]string {
		env := map[string]string{"DEV_STATE_DIR": filepath.Join(dir, state)}
		for k, v := range common {
			env[k] = v
		}
		return env
	}
	mine, other := with("mine"), with("other")
	t.Cleanup(func() { devSh(t, mine, "stop") })

	devSh(t, mine, "azurite")
	f := strings.Fields(stateLines(t, mine["DEV_STATE_DIR"]))
	if len(f) != 3 || f[0] != "azurite" || f[2] != common["DEV_AZURITE_DIR"] {
		t.Fatalf("state file %q, want one azurite line", f)
	}
	pid, _ := strconv.Atoi(f[1])
	if !testenv.ProcessRuns(pid) || !listening(queue) || !listening(table) {
		t.Fatalf("Azurite pid %d not running on %d/%d", pid, queue, table)
	}

	// A second checkout finds it running: it records nothing and stops nothing.
	devSh(t, other, "azurite")
	if s := stateLines(t, other["DEV_STATE_DIR"]); s != "" {
		t.Errorf("dev.sh recorded %q for an Azurite it did not start", s)
	}
	if out := devSh(t, other, "stop"); !strings.Contains(out, "nothing to stop") {
		t.Errorf("stop without a state file said %q", out)
	}
	if !testenv.ProcessRuns(pid) || !listening(queue) {
		t.Fatal("stop stopped an Azurite it had not started")
	}

	// A recorded pid that now belongs to something else is left alone.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() })
	reused := with("reused")
	if err := os.MkdirAll(reused["DEV_STATE_DIR"], 0o755); err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("azurite %d %s\n", sleeper.Process.Pid, common["DEV_AZURITE_DIR"])
	if err := os.WriteFile(filepath.Join(reused["DEV_STATE_DIR"], "services"), []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	devSh(t, reused, "stop")
	if !testenv.ProcessRuns(sleeper.Process.Pid) {
		t.Error("stop signalled a process that merely reuses a recorded pid")
	}

	out := devSh(t, mine, "stop")
	if !strings.Contains(out, fmt.Sprintf("stopping Azurite (pid %d", pid)) {
		t.Errorf("stop said %q", out)
	}
	testenv.WaitFor(t, 15*time.Second, "Azurite to end", func() bool { return !testenv.ProcessRuns(pid) && !listening(queue) })
	if s := stateLines(t, mine["DEV_STATE_DIR"]); s != "" {
		t.Errorf("state file left after stop: %q", s)
	}
	if out := devSh(t, mine, "stop"); !strings.Contains(out, "nothing to stop") {
		t.Errorf("second stop said %q", out)
	}
}

// TestStopStopsTheProjectLocalPostgres: with nothing on its port, dev.sh
// creates and starts a project-local cluster and records it; `dev.sh stop`
// from another checkout leaves it, from this one stops it.
func TestStopStopsTheProjectLocalPostgres(t *testing.T) {
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		t.Skip("no PostgreSQL binaries in /usr/lib/postgresql")
	}
	dir := t.TempDir()
	// The cluster belongs to the postgres user when we are root: it must
	// reach its data directory (t.TempDir makes 0700 directories).
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	port := testenv.FreePort(t)
	with := func(state string) map[string]string {
		return map[string]string{"DEV_PG_PORT": strconv.Itoa(port), "DEV_PGDATA": filepath.Join(dir, "pgdata"),
			"DEV_STATE_DIR": filepath.Join(dir, state)}
	}
	mine, other := with("mine"), with("other")
	t.Cleanup(func() { devSh(t, mine, "stop") })

	devSh(t, mine, "postgres")
	if !listening(port) {
		t.Fatalf("no PostgreSQL on %d", port)
	}
	if s := stateLines(t, mine["DEV_STATE_DIR"]); !strings.HasPrefix(s, "postgres-local ") || !strings.Contains(s, mine["DEV_PGDATA"]) {
		t.Fatalf("state file %q, want the project-local cluster", s)
	}
	devSh(t, other, "postgres")
	if s := stateLines(t, other["DEV_STATE_DIR"]); s != "" {
		t.Errorf("dev.sh recorded %q for a PostgreSQL it did not start", s)
	}
	devSh(t, other, "stop")
	if !listening(port) {
		t.Fatal("stop stopped a PostgreSQL it had not started")
	}
	devSh(t, mine, "stop")
	testenv.WaitFor(t, 15*time.Second, "PostgreSQL to stop", func() bool { return !listening(port) })
}
