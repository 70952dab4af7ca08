//go:build chaos

package e2e

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

var (
	chaosDuration = flag.Duration("chaos.duration", 60*time.Second, "how long the writers run")
	chaosWriters  = flag.Int("chaos.writers", 8, "concurrent API clients")
	chaosSeed     = flag.Uint64("chaos.seed", uint64(time.Now().UnixNano()), "random seed (printed, to replay a run)")
	chaosPace     = flag.Duration("chaos.pace", 100*time.Millisecond, "least time between two writes of one writer (about the rate writes had while they waited for the queue)")
)

// TestChaos is `make chaos`: the convergence drill, longer and with more
// writers, printing its report. It ends with "rows differing: N"; N must be 0.
func TestChaos(t *testing.T) {
	s := startStack(t, nil)
	d := drill{Seed: *chaosSeed, Writers: *chaosWriters, Duration: *chaosDuration, Outage: *chaosDuration / 6, Pace: *chaosPace}
	fmt.Printf("chaos drill: seed %d, %d writers at most one write per %s each, %s, outages up to %s each\n", d.Seed, d.Writers, d.Pace, d.Duration, d.Outage)
	rep := d.run(t, s)
	fmt.Print(rep)
	if len(rep.RowsDiffering) != 0 || len(rep.NotReached) != 0 || len(rep.Model.Violations) != 0 {
		t.Errorf("differing rows %v; acknowledged writes missing %v; model violations %v", rep.RowsDiffering, rep.NotReached, rep.Model.Violations)
	}
}

// TestRestoreChaos is `make restore-drill`: the writers of the chaos drill
// while one database is restored from a backup taken mid-load and the other
// rebuilt empty (restore_drill_test.go). It ends with "violations: 0" and
// "rows differing: 0".
func TestRestoreChaos(t *testing.T) {
	s := startStack(t, nil)
	d := drill{Seed: *chaosSeed, Writers: *chaosWriters, Duration: *chaosDuration, Pace: *chaosPace, Restores: true}
	fmt.Printf("restore drill: seed %d, %d writers at most one write per %s each, %s of writes around two rounds\n", d.Seed, d.Writers, d.Pace, d.Duration)
	rep := d.run(t, s)
	fmt.Print(rep)
	checkRestoreDrill(t, rep)
}
