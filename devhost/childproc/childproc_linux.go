// Package childproc starts child processes that do not outlive their parent.
// devhost starts the handler with it, and the tests start Azurite with it, so
// neither a killed devhost nor a killed test binary leaves a process behind.
// It lives under devhost so that devhost keeps importing nothing else of
// dualsync's.
package childproc

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// spawner starts children from one goroutine locked to its OS thread for the
// life of the process. Linux sends the parent-death signal when the thread
// that forked the child exits, not the process; the Go runtime may end a
// thread (one whose goroutine exited while locked to it), so children are
// forked only from this thread, which never exits before the process does.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// Start starts cmd in its own process group (so a terminal's Ctrl-C reaches
// the parent only, and the parent can signal the group) with SIGKILL as its
// parent-death signal: if the parent dies, even by SIGKILL, the kernel kills
// the child.
func Start(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives as long as the process
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd: cmd, done: done}
	return <-done
}
