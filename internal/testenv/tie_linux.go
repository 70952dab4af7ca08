package testenv

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// spawner starts children from one goroutine locked to its OS thread for
// the life of the process. Linux sends the parent-death signal when the
// thread that forked the child exits, not the process; the Go runtime may
// end a thread (one whose goroutine exited while locked), so children are
// forked only from this thread, which never exits before the process does.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

// startTied starts cmd in its own process group (so Stop can signal the
// group) with SIGKILL as its parent-death signal: if the test binary dies,
// even by SIGKILL, the kernel kills the child.
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
