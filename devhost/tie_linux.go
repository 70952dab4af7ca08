package devhost

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// spawner starts handler processes from one goroutine locked to its OS
// thread for the life of the process: Linux sends the parent-death signal
// when the thread that forked the child exits, and the Go runtime may end a
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

// startTied starts cmd in its own process group (so a terminal's Ctrl-C
// reaches devhost only, which drains invocations before it stops the
// handler) with SIGKILL as its parent-death signal: if devhost, or a test
// binary running a Host, dies without stopping it, the kernel kills it.
func startTied(cmd *exec.Cmd) error {
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
