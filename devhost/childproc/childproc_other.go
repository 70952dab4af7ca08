//go:build !linux

package childproc

import (
	"os/exec"
	"syscall"
)

// Start starts cmd in its own process group. Without Linux's parent-death
// signal the child outlives a parent that is killed without stopping it.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
