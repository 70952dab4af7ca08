package explore

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"dualsync/internal/testenv"
)

// TestMain stops the Azurite these tests may have started.
func TestMain(m *testing.M) { testenv.Main(m) }

// realSeeds is the fixed sample TestExploreOnPostgresAndAzurite runs.
const realSeeds = 30

// TestExploreOnPostgresAndAzurite runs a fixed sample of histories with the
// real adapters (issue 28): both databases real PostgreSQL databases, the
// recorder table.Store on Azurite; the generator, steps and checks are the
// memdb explorer's. A failing history is run in memory too (a difference
// there is a memdb infidelity) and shrunk on the real backend.
func TestExploreOnPostgresAndAzurite(t *testing.T) {
	if testing.Short() {
		t.Skip("real PostgreSQL and Azurite: not in -short")
	}
	storage := testenv.Storage(t)
	// EXPLORE_REAL_SEED and EXPLORE_REAL_N move and widen the sample.
	first, n := uint64(1), uint64(realSeeds)
	if s := os.Getenv("EXPLORE_REAL_SEED"); s != "" {
		fmt.Sscan(s, &first)
	}
	if s := os.Getenv("EXPLORE_REAL_N"); s != "" {
		fmt.Sscan(s, &n)
	}
	start := time.Now()
	ran, restored, failed, faulted := 0, 0, 0, 0
	for seed := first; seed < first+n; seed++ {
		h := Generate(seed)
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			out := runOn(h, newRealBackend(t, storage))
			ran++
			if out.Restored {
				restored++
			}
			if strings.Contains(strings.Join(out.Steps, "\n"), "(fired true)") {
				faulted++
			}
			if len(out.Violations) == 0 {
				return
			}
			failed++
			v := out.Violations[0]
			mem := Run(h)
			shrunk := shrinkWith(h, v.Kind, 40, func(c History) Outcome { return runOn(c, newRealBackend(t, storage)) })
			again := runOn(shrunk, newRealBackend(t, storage))
			t.Errorf("seed %d on PostgreSQL and Azurite: %s (in memory: %d violations)\n%s\nshrunk to %d steps, %d instances (offsets %v):\n  %s\nviolations: %v",
				seed, v, len(mem.Violations), strings.Join(out.Steps, "\n"), len(shrunk.Steps), len(shrunk.Offsets), shrunk.Offsets,
				strings.Join(again.Steps, "\n  "), again.Violations)
		})
	}
	t.Logf("%d histories on PostgreSQL and Azurite in %v: %d with violations, %d with a restore or rebuild, %d with an injected crash",
		ran, time.Since(start).Round(time.Millisecond), failed, restored, faulted)
	if ran == int(n) && (restored == 0 || faulted == 0) {
		t.Errorf("the sample restored %d and crashed %d histories: it no longer exercises the real backend's backups or faults", restored, faulted)
	}
}
