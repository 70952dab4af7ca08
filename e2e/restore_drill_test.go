package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/store"
	"dualsync/internal/syncer"
	"dualsync/internal/table"
	"dualsync/internal/testenv"
)

// restoreRounds takes the databases back in time while the writers keep
// writing, in two rounds: one database (the seed picks which) is restored
// from a backup taken mid-load, then the other is rebuilt empty. Each round
// is what an operator does in Azure: the old database is taken out of the
// app's reach, what it took that the other has not yet got is synced from
// it (it can still be read: a point-in-time restore creates a new database
// beside it), then the restored (or new, empty) database takes its place
// and the app restarts onto it. Everything acknowledged is then in the other
// database; the restored one has gone back in time, and sync must bring it
// forward without losing a write or trusting its vectors.
func (d drill) restoreRounds(ctx context.Context, t *testing.T, s *stack, rng *rand.Rand, current *atomic.Value) []string {
	parts := []string{"primary", "fallback"}
	rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	slot := d.Duration / 3
	var done []string
	for round, part := range parts {
		sleepCtx(ctx, slot/4)
		url, db := s.primaryURL, s.primary
		if part == "fallback" {
			url, db = s.fallbackURL, s.fallback
		}
		var backup *testenv.Backup
		if round == 0 {
			backup = testenv.TakeBackup(t, url) // mid-load
		}
		sleepCtx(ctx, slot/2)                   // writes the backup will not have
		current.Store("restore of the " + part) // no second instance writes during a swap
		down, up := s.breaker(part)
		down()
		s.drainDirect(t, db)
		if backup != nil {
			backup.Restore(t, url)
			done = append(done, part+" restored from a backup taken mid-load")
		} else {
			testenv.Rebuild(t, url)
			done = append(done, part+" rebuilt empty")
		}
		up()
		s.restartHandler(t)
		// The new handler finds the database behind the other and starts
		// repair runs; what it lost comes back only through them, so the
		// next round waits for them (losing the other database first would
		// lose those rows: two failures at once).
		s.waitRepairs(t)
		current.Store("no")
	}
	return done
}

// waitRepairs waits until the repair runs the restarted handler started
// (it compares the databases at once) are final.
func (s *stack) waitRepairs(t *testing.T) {
	t.Helper()
	time.Sleep(2 * time.Second) // the start-up comparison
	testenv.WaitFor(t, 120*time.Second, "the repair runs", func() bool {
		var runs []struct {
			RuntimeStatus string `json:"runtimeStatus"`
			CustomStatus  struct {
				Trigger string `json:"trigger"`
			} `json:"customStatus"`
			CreatedTime string `json:"createdTime"`
		}
		if code, _ := s.call("GET", "/api/product-sync?limit=100", "", &runs); code != 200 {
			return false
		}
		repairs, final := 0, 0
		for _, r := range runs {
			if r.CustomStatus.Trigger != "repair" {
				continue
			}
			repairs++
			if r.RuntimeStatus == "Completed" || r.RuntimeStatus == "Failed" {
				final++
			}
		}
		return repairs > 0 && final == repairs
	})
}

// drainDirect syncs every item in db's outbox over the test's own
// connections, which reach both databases whatever the proxies do: the last
// sync from a database about to be replaced.
func (s *stack) drainDirect(t *testing.T, db store.DB) {
	t.Helper()
	ctx := context.Background()
	tsvc, err := aztables.NewServiceClientFromConnectionString(s.azurite.ConnString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := table.New(tsvc, &table.Options{Prefix: "drain" + testenv.RandomHex(3)})
	if err := rec.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	eng := syncer.New(s.primary, s.fallback, nil, nil, rec, syncer.Options{})
	far := time.Now().Add(24 * time.Hour)
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("the %s's outbox synced straight", db.Role()), func() bool {
		entries, err := db.PendingOutbox(ctx, far, far, 1000)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, e := range entries {
			k := fmt.Sprint(e.Entity, e.ID)
			if seen[k] {
				continue
			}
			seen[k] = true
			// A failure (a row written meanwhile, an email still held) is
			// tried again on the next pass.
			_ = eng.SyncItem(ctx, syncer.Message{Entity: e.Entity, ID: e.ID})
		}
		return len(entries) == 0
	})
}

// TestRestoreConvergence is the restore drill in make test: short, with a
// few writers; `make restore-drill` runs it longer (chaos tag).
func TestRestoreConvergence(t *testing.T) {
	s := startStack(t, nil)
	rep := drill{Seed: 5, Writers: 4, Duration: 12 * time.Second, Pace: 20 * time.Millisecond, Restores: true}.run(t, s)
	t.Logf("drill report:\n%s", rep)
	checkRestoreDrill(t, rep)
	if !strings.Contains(s.log.String(), `"event":"database_regressed"`) {
		t.Error("the handler never logged database_regressed")
	}
}

// checkRestoreDrill is checkDrill after both rounds.
func checkRestoreDrill(t *testing.T, rep drillReport) {
	t.Helper()
	if len(rep.Outages) != 2 {
		t.Fatalf("rounds %v, want 2", rep.Outages)
	}
	checkDrill(t, rep)
}
