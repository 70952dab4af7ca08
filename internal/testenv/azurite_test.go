package testenv

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { Main(m) }

// helperEnv makes the test binary act as a test process that starts
// Azurites: its value is what it does then ("exit" or "hang").
const helperEnv = "TESTENV_HELPER_MODE"

// TestHelperProcess is not a test: run by TestNoAzuriteOutlivesTheTestBinary
// as a child test binary, it starts Azurite both ways (Storage with nothing
// to find, so the process's own, and StartAzurite), prints their pids, then
// returns (Main stops them) or hangs until it is killed.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper for TestNoAzuriteOutlivesTheTestBinary")
	}
	_ = Storage(t)
	_ = StartAzurite(t)
	running.Lock()
	var pids []string
	for a := range running.set {
		pids = append(pids, strconv.Itoa(a.cmd.Process.Pid))
	}
	running.Unlock()
	sort.Strings(pids)
	fmt.Printf("PIDS %s\n", strings.Join(pids, " "))
	if mode == "hang" {
		select {}
	}
}

// TestNoAzuriteOutlivesTheTestBinary runs a test binary that starts Azurite
// and then ends normally, or is killed with SIGKILL (no cleanup can run),
// and checks that none of its Azurite processes is left.
func TestNoAzuriteOutlivesTheTestBinary(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("inside the helper")
	}
	tests := []struct {
		name, mode string
		kill       bool
	}{
		{"tests end: Main stops them", "exit", false},
		{"test binary killed: the OS kills them", "hang", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
			// "none": the helper must start its own even where 10000-10002 answer.
			// TMPDIR: a killed helper cannot remove its temporary directories.
			cmd.Env = append(os.Environ(), helperEnv+"="+tc.mode, PortsEnv+"=none", "TMPDIR="+t.TempDir())
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pids []int
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "PIDS "); ok {
					for _, f := range strings.Fields(rest) {
						n, _ := strconv.Atoi(f)
						pids = append(pids, n)
					}
					break
				}
			}
			// Whatever happens, leave nothing behind ourselves.
			t.Cleanup(func() {
				for _, p := range pids {
					if alive(p) {
						_ = syscall.Kill(p, syscall.SIGKILL)
					}
				}
			})
			if len(pids) != 2 {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				t.Fatalf("helper reported pids %v, want two Azurites", pids)
			}
			for _, p := range pids {
				if !alive(p) {
					t.Fatalf("Azurite %d is not running while the helper runs", p)
				}
			}
			if tc.kill {
				_ = cmd.Process.Kill()
			}
			go func() { // drain so the helper never blocks on a full pipe
				for sc.Scan() {
				}
			}()
			err = cmd.Wait()
			if !tc.kill && err != nil {
				t.Fatalf("helper: %v", err)
			}
			WaitFor(t, 20*time.Second, fmt.Sprintf("Azurite processes %v to end", pids), func() bool {
				for _, p := range pids {
					if alive(p) {
						return false
					}
				}
				return true
			})
		})
	}
}

// alive reports whether pid is a running (not zombie) Azurite process.
func alive(pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "azurite") {
		return false
	}
	return ProcessRuns(pid)
}

func TestProbePorts(t *testing.T) {
	tests := []struct {
		in      string
		want    []int
		wantErr bool
	}{
		{"", []int{10000, 10001, 10002}, false},
		{"none", nil, false},
		{" 20000, 20001 ,20002", []int{20000, 20001, 20002}, false},
		{"20000,20001", nil, true},
		{"a,b,c", nil, true},
		{"0,1,2", nil, true},
	}
	for _, tc := range tests {
		got, err := probePorts(tc.in)
		if (err != nil) != tc.wantErr || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("probePorts(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
