// Package explore is the history explorer (issue 28): it generates random
// histories over the two databases (API writes of every kind on either side
// and on several instances, outages and failovers, backups and restores,
// restarts, crashes between any two steps of a sync, redeliveries and
// duplicates, recording failures, retention passes, full and diff runs,
// clock offsets), runs the real sync engine over in-memory databases
// (internal/memdb), Table Storage (Recorder) and queues (Queue), and checks
// each quiesced history against a model of README's guarantees. A failing
// history is shrunk to a minimal one that still fails the same way. The
// same histories also run on the real adapters (PostgreSQL, table.Store on
// Azurite): see backend and TestExploreOnPostgresAndAzurite.
package explore

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Outcome is what one history did.
type Outcome struct {
	Violations []Violation
	Steps      []string // what each step did
	Restored   bool
}

// Run runs a history in memory and checks it.
func Run(h History) Outcome { return runOn(h, newMemBackend()) }

// runOn runs a history on backend b and checks it.
func runOn(h History, b backend) Outcome {
	defer b.close()
	w := newWorld(h.Offsets, b)
	for i, s := range h.Steps {
		w.desc = append(w.desc, fmt.Sprintf("%2d. +%v %s", i, s.DT, w.exec(i, s)))
	}
	rng := rand.New(rand.NewPCG(h.Seed, 7))
	if w.quiesce(rng) {
		w.check()
	}
	for _, in := range w.insts {
		in.p.Close()
		in.f.Close()
	}
	for _, db := range w.look {
		db.Close()
	}
	return Outcome{Violations: w.viols, Steps: w.desc, Restored: w.restores > 0}
}

// Shrink removes steps from a failing history while it still fails with a
// violation of the same kind (delta debugging: chunks of halving size, then
// single steps, until nothing more can go).
func Shrink(h History, kind string, budget int) History { return shrinkWith(h, kind, budget, Run) }

// shrinkWith is Shrink with the histories run by run.
func shrinkWith(h History, kind string, budget int, run func(History) Outcome) History {
	fails := func(c History) bool {
		if budget <= 0 {
			return false
		}
		budget--
		return slices.ContainsFunc(run(c).Violations, func(v Violation) bool { return v.Kind == kind })
	}
	for n := len(h.Steps) / 2; n >= 1; {
		removed := false
		for i := 0; i+n <= len(h.Steps); {
			c := h
			c.Steps = slices.Concat(h.Steps[:i], h.Steps[i+n:])
			if fails(c) {
				h, removed = c, true
				continue
			}
			i += n
		}
		if !removed {
			n /= 2
		}
	}
	// Fewer instances, if the history does not need them.
	for len(h.Offsets) > 1 {
		c := h
		c.Offsets = h.Offsets[:len(h.Offsets)-1]
		if !fails(c) {
			break
		}
		h = c
	}
	return h
}

// Failure is a failing history, shrunk.
type Failure struct {
	Seed      uint64
	Violation Violation
	Shrunk    History
	Steps     []string
}

func (f Failure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d: %s\nshrunk to %d steps, %d instances (offsets %v):\n", f.Seed, f.Violation, len(f.Shrunk.Steps), len(f.Shrunk.Offsets), f.Shrunk.Offsets)
	for _, s := range f.Steps {
		b.WriteString("  " + s + "\n")
	}
	return b.String()
}

// Report sums up many histories.
type Report struct {
	Histories  int
	Violations int            // histories with at least one violation
	Kinds      map[string]int // histories per violation kind
	Restored   int            // histories with a restore or rebuild
	First      map[string]uint64
	Failures   []Failure     // the first failing history of each kind, shrunk
	Elapsed    time.Duration // exploring, shrinking aside
}

// Options configure Explore.
type Options struct {
	N       int    // histories
	Seed    uint64 // the first history's seed; history i has Seed+i
	Workers int    // default: one per CPU
	Shrink  bool   // shrink the first failure of each kind
	// StopAfter, if > 0, stops once that many histories have failed.
	StopAfter int
}

// Explore runs o.N histories, o.Workers at a time.
func Explore(o Options) Report {
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	start := time.Now()
	rep := Report{Kinds: map[string]int{}, First: map[string]uint64{}}
	var (
		mu     sync.Mutex
		next   atomic.Int64
		failed atomic.Int64
		wg     sync.WaitGroup
	)
	for range o.Workers {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(o.N) || o.StopAfter > 0 && failed.Load() >= int64(o.StopAfter) {
					return
				}
				seed := o.Seed + uint64(i)
				out := Run(Generate(seed))
				mu.Lock()
				rep.Histories++
				if out.Restored {
					rep.Restored++
				}
				seen := map[string]bool{}
				for _, v := range out.Violations {
					if seen[v.Kind] {
						continue
					}
					seen[v.Kind] = true
					rep.Kinds[v.Kind]++
					if f, ok := rep.First[v.Kind]; !ok || seed < f {
						rep.First[v.Kind] = seed
					}
				}
				if len(out.Violations) > 0 {
					rep.Violations++
					failed.Add(1)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	if o.Shrink {
		for _, k := range slices.Sorted(mapsKeys(rep.First)) {
			seed := rep.First[k]
			h := Shrink(Generate(seed), k, 3000)
			out := Run(h)
			f := Failure{Seed: seed, Shrunk: h, Steps: out.Steps}
			for _, v := range out.Violations {
				if v.Kind == k {
					f.Violation = v
					break
				}
			}
			rep.Failures = append(rep.Failures, f)
		}
	}
	return rep
}

func mapsKeys(m map[string]uint64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
