package main

import (
	"fmt"
	"runtime"
	"time"
)

// procSet names the processes whose CPU a row reports; 0 means none.
type procSet struct{ Handler, Host, Storage int }

// cpuUse is CPU time used by a procSet over Wall.
type cpuUse struct{ Handler, Host, Storage, Wall time.Duration }

func pidOf(p *proc) int {
	if p == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// cpu returns the CPU time each process has used so far (0 for a process
// that is not there: a reading, not a reason to stop the bench).
func (ps procSet) cpu() cpuUse {
	get := func(pid int) time.Duration {
		if pid == 0 {
			return 0
		}
		d, _ := cpuTime(pid)
		return d
	}
	return cpuUse{Handler: get(ps.Handler), Host: get(ps.Host), Storage: get(ps.Storage)}
}

func (u cpuUse) sub(v cpuUse) cpuUse {
	return cpuUse{Handler: u.Handler - v.Handler, Host: u.Host - v.Host, Storage: u.Storage - v.Storage, Wall: u.Wall - v.Wall}
}

func (u cpuUse) total() time.Duration { return u.Handler + u.Host + u.Storage }

// share is d as a part of the machine's CPU over the wall time.
func (u cpuUse) share(d time.Duration) float64 {
	if u.Wall <= 0 {
		return 0
	}
	return d.Seconds() / (u.Wall.Seconds() * float64(runtime.NumCPU()))
}

func (u cpuUse) String() string {
	return fmt.Sprintf("handler %.0f%%, host %.0f%%, storage %.0f%% of %d CPUs",
		100*u.share(u.Handler), 100*u.share(u.Host), 100*u.share(u.Storage), runtime.NumCPU())
}
