package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"dualsync/internal/testenv"
)

// handlerPIDs lists the processes running the app's handler binary.
func (s *stack) handlerPIDs() []int {
	exe := filepath.Join(s.dir, "handler")
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if target, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && target == exe {
			out = append(out, pid)
		}
	}
	return out
}

// restartHandler stops the handler as the host does when it recycles an
// instance (SIGTERM) and waits for the one devhost starts instead: a new
// process, with its own start-up (vector floors, id checks, breaker).
func (s *stack) restartHandler(t *testing.T) {
	t.Helper()
	before := s.handlerPIDs()
	if len(before) == 0 {
		t.Fatal("no handler process found")
	}
	for _, pid := range before {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	testenv.WaitFor(t, 60*time.Second, "a new handler process", func() bool {
		now := s.handlerPIDs()
		if len(now) == 0 || now[0] == before[0] {
			return false
		}
		resp, err := http.Get(s.url + "/api/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}
