//go:build !linux

package devhost

import (
	"os/exec"
	"syscall"
)

// startTied starts cmd in its own process group (so a terminal's Ctrl-C
// reaches devhost only). Without Linux's parent-death signal a handler
// outlives a devhost that is killed without stopping it.
func startTied(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd.Start()
}
