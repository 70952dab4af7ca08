//go:build !linux

package testenv

import (
	"os/exec"
	"syscall"
)

// startTied starts cmd in its own process group. Without Linux's
// parent-death signal only Main (or the test's cleanup) stops it: a test
// binary that is killed leaves it running.
func startTied(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
