package devhost

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"dualsync/internal/testenv"
)

const tieHelperEnv = "DEVHOST_TIE_HELPER"

// TestTieHelper is not a test: run by TestHandlerDiesWithDevhost as a child
// test binary, it runs a Host, prints its handler's pid and hangs until killed.
func TestTieHelper(t *testing.T) {
	if os.Getenv(tieHelperEnv) == "" {
		t.Skip("helper for TestHandlerDiesWithDevhost")
	}
	dir := newApp(t, "basic")
	// HTTP functions only: no storage needed.
	rt := startHost(t, dir, map[string]string{"AzureWebJobs.Work.Disabled": "true", "AzureWebJobs.Fail.Disabled": "true"}, Options{})
	rt.h.w.mu.Lock()
	pid := rt.h.w.cmd.Process.Pid
	rt.h.w.mu.Unlock()
	fmt.Printf("HANDLER %d\n", pid)
	select {}
}

// TestHandlerDiesWithDevhost kills (SIGKILL) a test binary running a Host
// and checks that its handler process does not outlive it.
func TestHandlerDiesWithDevhost(t *testing.T) {
	if os.Getenv(tieHelperEnv) != "" {
		t.Skip("inside the helper")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTieHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), tieHelperEnv+"=1", "TMPDIR="+t.TempDir())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "HANDLER "); ok {
			pid, _ = strconv.Atoi(rest)
			break
		}
	}
	t.Cleanup(func() {
		if pid > 0 && testenv.ProcessRuns(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	if pid == 0 || !testenv.ProcessRuns(pid) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("helper reported no running handler (pid %d)", pid)
	}
	_ = cmd.Process.Kill()
	go func() {
		for sc.Scan() {
		}
	}()
	_ = cmd.Wait()
	waitFor(t, 20*time.Second, fmt.Sprintf("handler %d to end", pid), func() bool { return !testenv.ProcessRuns(pid) })
}
