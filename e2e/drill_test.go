package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// drill is a fault drill: concurrent clients write through the API while
// the primary, the fallback and Azurite go down and come back in turn; then
// the outboxes drain, full runs repair what is left, and both databases
// must hold exactly the same rows, tombstones included.
type drill struct {
	Seed     uint64
	Writers  int
	Duration time.Duration
	Outage   time.Duration // how long each outage lasts (at most)
	// Pace is the least time between two writes of one writer (0: none).
	// Writes no longer wait for the queue, so unpaced writers outrun what
	// sync does on a loaded machine many times over.
	Pace time.Duration
}

// ack is a write the API acknowledged: the row must end up in both
// databases at this version or newer (a tombstone for a delete).
type ack struct {
	entity  domain.Entity
	id      int64
	version time.Time // zero for a delete
	deleted bool
	// notFound marks a refused write that answered 404: expected while the
	// primary is down, for rows it took that have not replicated yet.
	notFound bool
}

type drillReport struct {
	Acked, Failed  int
	FailedDuring   map[string]int // "<part> outage (<kind>)" -> failed requests
	Outages        []string
	ReachedBoth    int      // once the outboxes drained, before any full run
	NotReached     []string // the same moment
	RowsDiffering  []string
	RunsCompleted  int
	DrainTime      time.Duration // until both outboxes were empty
	ConvergeTime   time.Duration // until both full runs completed
	ProductsAndIDs int
}

func (r drillReport) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "outages: %s\n", strings.Join(r.Outages, ", "))
	fmt.Fprintf(&b, "writes acknowledged: %d\n", r.Acked)
	fmt.Fprintf(&b, "acknowledged writes in both databases once the outboxes drained: %d\n", r.ReachedBoth)
	keys := make([]string, 0, len(r.FailedDuring))
	for k := range r.FailedDuring {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "requests failed during %s: %d\n", k, r.FailedDuring[k])
	}
	fmt.Fprintf(&b, "after the drill: outboxes empty in %s, full runs completed in %s\n", r.DrainTime.Round(time.Millisecond), r.ConvergeTime.Round(time.Millisecond))
	fmt.Fprintf(&b, "rows compared: %d\n", r.ProductsAndIDs)
	fmt.Fprintf(&b, "rows differing: %d\n", len(r.RowsDiffering))
	return b.String()
}

func (d drill) run(t *testing.T, s *stack) drillReport {
	t.Helper()
	rng := rand.New(rand.NewPCG(d.Seed, d.Seed^0x5eed))
	rep := drillReport{FailedDuring: map[string]int{}}
	var (
		mu      sync.Mutex
		acks    []ack
		current atomic.Value // the outage in progress
	)
	current.Store("no")
	failed := func(a ack) {
		kind := "5xx or no answer"
		if a.notFound {
			kind = "404, not yet replicated"
		}
		mu.Lock()
		rep.Failed++
		rep.FailedDuring[fmt.Sprintf("%s outage (%s)", current.Load(), kind)]++
		mu.Unlock()
	}

	ctx, cancel := context.WithTimeout(context.Background(), d.Duration)
	defer cancel()
	var wg sync.WaitGroup
	for w := range d.Writers {
		wr := rand.New(rand.NewPCG(d.Seed+uint64(w)+1, 7))
		wg.Go(func() {
			var mine []int64 // live product ids this writer created
			var users []int64
			for n := 0; ctx.Err() == nil; n++ {
				next := time.Now().Add(d.Pace)
				a, ok := d.step(s, wr, w, n, &mine, &users)
				if ok {
					mu.Lock()
					acks = append(acks, a)
					mu.Unlock()
				} else if a.entity != "" {
					failed(a)
				}
				sleepCtx(ctx, time.Until(next))
			}
		})
	}

	// Outages in turn, in an order the seed picks.
	parts := []string{"primary", "fallback", "azurite"}
	rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	slot := d.Duration / time.Duration(len(parts)+1)
	for _, part := range parts {
		if !sleepCtx(ctx, slot/3) {
			break
		}
		length := d.Outage/2 + time.Duration(rng.Int64N(int64(d.Outage/2)+1))
		rep.Outages = append(rep.Outages, fmt.Sprintf("%s %s", part, length.Round(100*time.Millisecond)))
		current.Store(part)
		down, up := s.breaker(part)
		down()
		sleepCtx(ctx, length)
		up()
		current.Store("no")
		sleepCtx(ctx, slot-slot/3-length)
	}
	<-ctx.Done()
	wg.Wait()
	rep.Acked = len(acks)

	// Converge: the outboxes drain (real-time sync and the relay). That
	// alone must bring every acknowledged write to both databases: the
	// response does not wait for the sync message, the outbox carries it.
	// Full runs then repair anything else (writes whose outcome the client
	// never learnt).
	start := time.Now()
	waitOutboxes(t, s, drainBudget(len(acks)))
	rep.DrainTime = time.Since(start)
	for _, a := range acks {
		if reached(t, s.primary, a) && reached(t, s.fallback, a) {
			rep.ReachedBoth++
		} else {
			rep.NotReached = append(rep.NotReached, fmt.Sprintf("%s %d", a.entity, a.id))
		}
	}
	for _, body := range []string{`{"entity":"product"}`, `{"entity":"user"}`} {
		if st := s.waitRun(s.startRun(body), 120*time.Second); st.RuntimeStatus == "Completed" {
			rep.RunsCompleted++
		}
	}
	rep.ConvergeTime = time.Since(start)

	p, f := takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback)
	rep.ProductsAndIDs = len(p)
	rep.RowsDiffering = differing(p, f)
	return rep
}

// drainBudget bounds how long the outboxes may take to drain after the
// writers stop. Writes do not wait for their sync message, so the backlog
// grows with the writes acknowledged: the budget allows sync 20 ms per write
// (50 writes/s, well below what it does on a quiet machine) beyond two
// minutes for outages and relay cycles.
func drainBudget(acked int) time.Duration {
	return 2*time.Minute + time.Duration(acked)*20*time.Millisecond
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// breaker returns functions that take a part of the stack down and back up.
func (s *stack) breaker(part string) (down, up func()) {
	switch part {
	case "primary":
		return s.primaryProxy.Cut, s.primaryProxy.Restore
	case "fallback":
		return s.fallbackProxy.Cut, s.fallbackProxy.Restore
	default:
		return s.azurite.Stop, s.azurite.Start
	}
}

// step makes one random write; ok reports an acknowledged write, and a
// zero entity a step that sent nothing.
func (d drill) step(s *stack, r *rand.Rand, w, n int, mine, users *[]int64) (ack, bool) {
	pick := func(ids []int64) int64 { return ids[r.IntN(len(ids))] }
	switch x := r.IntN(100); {
	case x < 35 || len(*mine) == 0:
		var p apiProduct
		code, body := s.write("POST", "/api/products", fmt.Sprintf(`{"name":"w%d-%d","price":"%d.%02d"}`, w, n, r.IntN(1000), r.IntN(100)), &p)
		if code != http.StatusCreated {
			return ack{entity: domain.EntityProduct, notFound: code == http.StatusNotFound}, false
		}
		*mine = append(*mine, p.ID)
		return ack{entity: domain.EntityProduct, id: p.ID, version: parseTime(body.UpdatedAt)}, true
	case x < 70:
		id := pick(*mine)
		var p apiProduct
		code, body := s.write("PATCH", fmt.Sprintf("/api/products/%d", id), fmt.Sprintf(`{"description":"edit %d-%d"}`, w, n), &p)
		if code != http.StatusOK {
			return ack{entity: domain.EntityProduct, notFound: code == http.StatusNotFound}, false
		}
		return ack{entity: domain.EntityProduct, id: id, version: parseTime(body.UpdatedAt)}, true
	case x < 82:
		i := r.IntN(len(*mine))
		id := (*mine)[i]
		code, _ := s.write("DELETE", fmt.Sprintf("/api/products/%d", id), "", nil)
		if code != http.StatusNoContent {
			return ack{entity: domain.EntityProduct, notFound: code == http.StatusNotFound}, false
		}
		*mine = append((*mine)[:i], (*mine)[i+1:]...)
		return ack{entity: domain.EntityProduct, id: id, deleted: true}, true
	case x < 92 || len(*users) == 0:
		var u apiProduct // same id/updatedAt fields
		code, body := s.write("POST", "/api/users", fmt.Sprintf(`{"name":"u%d-%d","email":"w%d-%d-%d@example.com"}`, w, n, w, n, d.Seed), &u)
		if code != http.StatusCreated {
			return ack{entity: domain.EntityUser, notFound: code == http.StatusNotFound}, false
		}
		*users = append(*users, u.ID)
		return ack{entity: domain.EntityUser, id: u.ID, version: parseTime(body.UpdatedAt)}, true
	default:
		id := pick(*users)
		var u apiProduct
		code, body := s.write("PATCH", fmt.Sprintf("/api/users/%d", id), fmt.Sprintf(`{"name":"renamed %d-%d"}`, w, n), &u)
		if code != http.StatusOK {
			return ack{entity: domain.EntityUser, notFound: code == http.StatusNotFound}, false
		}
		return ack{entity: domain.EntityUser, id: id, version: parseTime(body.UpdatedAt)}, true
	}
}

// write sends one API write; any transport error or 5xx counts as not
// acknowledged (its effect, if any, must still converge).
func (s *stack) write(method, path, body string, out *apiProduct) (int, apiProduct) {
	s.t.Helper()
	code, _, b, err := s.try(method, path, body)
	if err != nil {
		return 0, apiProduct{}
	}
	if out != nil && len(b) > 0 && code < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Errorf("%s %s answered %d with %s", method, path, code, b)
		}
		return code, *out
	}
	// A 404 is expected while the primary is down: rows it took moments
	// ago may not have reached the fallback yet (replication is async).
	if code >= 400 && code < 500 && code != http.StatusNotFound {
		s.t.Errorf("%s %s: client error %d: %s", method, path, code, b)
	}
	return code, apiProduct{}
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(domain.TimeLayout, s)
	return t
}

// reached reports whether db holds the acknowledged write (or a newer one).
func reached(t *testing.T, db store.DB, a ack) bool {
	t.Helper()
	ctx := context.Background()
	var (
		updated time.Time
		deleted bool
		ok      bool
		err     error
	)
	if a.entity == domain.EntityProduct {
		var p domain.Product
		p, ok, err = db.LoadProduct(ctx, a.id)
		updated, deleted = p.UpdatedAt, p.Deleted()
	} else {
		var u domain.User
		u, ok, err = db.LoadUser(ctx, a.id)
		updated, deleted = u.UpdatedAt, u.Deleted()
	}
	if err != nil || !ok {
		return false
	}
	if a.deleted {
		return deleted
	}
	return !updated.Before(a.version)
}

// Convergence over several seeds: after random writes from concurrent
// clients through outages of each database and of Azurite, and a full run,
// both databases hold exactly the same rows and every acknowledged write.
func TestConvergence(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			s := startStack(t, nil)
			rep := drill{Seed: seed, Writers: 4, Duration: 9 * time.Second, Outage: 2 * time.Second}.run(t, s)
			t.Logf("drill report:\n%s", rep)
			if rep.Acked == 0 {
				t.Fatal("no write was acknowledged")
			}
			if len(rep.RowsDiffering) != 0 {
				t.Errorf("rows differing: %v", rep.RowsDiffering)
			}
			if len(rep.NotReached) != 0 {
				t.Errorf("acknowledged writes missing from a database: %v", rep.NotReached)
			}
			if rep.RunsCompleted != 2 {
				t.Errorf("full runs completed: %d of 2", rep.RunsCompleted)
			}
		})
	}
}
