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
	// Restores replaces the outages by two rounds of databases going back
	// in time (restore_drill_test.go): one database restored from a backup
	// taken mid-load, then the other rebuilt empty.
	Restores bool
}

// ack is a write the API (or a second instance) acknowledged: the row must
// end up in both databases at this version or newer (a tombstone for a
// delete), and its field values must obey the merge rules (see model).
type ack struct {
	entity  domain.Entity
	id      int64
	version time.Time // the write's updatedAt; zero for a delete
	deleted bool
	fields  map[string]string // the fields the write set, to these values
	// notFound marks a refused write that answered 404: expected while the
	// primary is down, for rows it took that have not replicated yet, and
	// for rows deleted on the side that serves.
	notFound bool
	// ambiguous marks a write without an answer (5xx, transport error):
	// it may or may not have been applied.
	ambiguous bool
}

type drillReport struct {
	Acked, Failed  int
	FailedDuring   map[string]int // "<part> outage (<kind>)" -> failed requests
	Outages        []string
	ReachedBoth    int      // once the outboxes drained, before any full run
	NotReached     []string // the same moment
	RowsDiffering  []string
	Model          modelReport
	SecondInstance int // writes made directly on the side the app could not reach
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
	fmt.Fprintf(&b, "writes by a second instance on the other side during outages: %d\n", r.SecondInstance)
	fmt.Fprintf(&b, "model check: %d rows checked, %d with an unanswered write (fields not checked), %d written on both sides, violations: %d\n",
		r.Model.Checked, r.Model.Ambiguous, r.Model.Merged, len(r.Model.Violations))
	for _, v := range r.Model.Violations {
		fmt.Fprintf(&b, "  %s\n", v)
	}
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
			kind = "404: deleted, or not yet replicated"
		}
		mu.Lock()
		rep.Failed++
		rep.FailedDuring[fmt.Sprintf("%s outage (%s)", current.Load(), kind)]++
		mu.Unlock()
	}

	ctx, cancel := context.WithTimeout(context.Background(), d.Duration)
	if d.Restores {
		// The writers go on until both rounds are done, however long the
		// swaps take, and a while after.
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	pool := &rows{}
	record := func(a ack, ok bool) {
		switch {
		case ok:
			mu.Lock()
			acks = append(acks, a)
			mu.Unlock()
		case a.entity != "":
			if a.id != 0 && !a.notFound {
				a.ambiguous = true
				mu.Lock()
				acks = append(acks, a)
				mu.Unlock()
			}
			failed(a)
		}
	}
	var wg sync.WaitGroup
	for w := range d.Writers {
		wr := rand.New(rand.NewPCG(d.Seed+uint64(w)+1, 7))
		wg.Go(func() {
			for n := 0; ctx.Err() == nil; n++ {
				next := time.Now().Add(d.Pace)
				record(d.step(s, wr, w, n, pool))
				sleepCtx(ctx, time.Until(next))
			}
		})
	}
	// A second instance whose breaker disagrees: while the app cannot reach
	// one database, it writes the same rows there directly (the test's own
	// connections bypass the proxies), so both sides change concurrently.
	wg.Go(func() {
		sr := rand.New(rand.NewPCG(d.Seed, 11))
		for n := 0; ctx.Err() == nil; n++ {
			part, _ := current.Load().(string)
			db := map[string]store.DB{"primary": s.primary, "fallback": s.fallback}[part]
			if db == nil {
				sleepCtx(ctx, 20*time.Millisecond)
				continue
			}
			a, ok := d.direct(db, sr, n, pool)
			record(a, ok)
			if ok {
				mu.Lock()
				rep.SecondInstance++
				mu.Unlock()
			}
			sleepCtx(ctx, 10*time.Millisecond)
		}
	})

	// Outages in turn, in an order the seed picks.
	parts := []string{"primary", "fallback", "azurite"}
	rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	slot := d.Duration / time.Duration(len(parts)+1)
	if d.Restores {
		parts = nil
		rep.Outages = d.restoreRounds(ctx, t, s, rng, &current)
		sleepCtx(ctx, d.Duration/3)
		cancel()
	}
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
	for _, a := range acks {
		if !a.ambiguous {
			rep.Acked++
		}
	}

	// Converge: the outboxes drain (real-time sync and the relay). That
	// alone must bring every acknowledged write to both databases: the
	// response does not wait for the sync message, the outbox carries it.
	// Full runs then repair anything else (writes whose outcome the client
	// never learnt).
	start := time.Now()
	waitOutboxes(t, s, drainBudget(len(acks)))
	rep.DrainTime = time.Since(start)
	if d.Restores {
		// A rebuilt database gets the rows nobody wrote since back from
		// the full runs only: count what reached both after them.
		d.runs(s, &rep)
		rep.ConvergeTime = time.Since(start)
	}
	for _, a := range acks {
		if a.ambiguous {
			continue // the client never learnt its outcome: the full runs below settle it
		}
		if reached(t, s.primary, a) && reached(t, s.fallback, a) {
			rep.ReachedBoth++
		} else {
			rep.NotReached = append(rep.NotReached, fmt.Sprintf("%s %d", a.entity, a.id))
		}
	}
	if !d.Restores {
		d.runs(s, &rep)
		rep.ConvergeTime = time.Since(start)
	}

	p, f := takeSnapshot(t, s.primary), takeSnapshot(t, s.fallback)
	rep.ProductsAndIDs = len(p)
	rep.RowsDiffering = differing(p, f)
	rep.Model = checkModel(t, s.primary, acks)
	return rep
}

// runs runs a full product run and a full user run.
func (d drill) runs(s *stack, rep *drillReport) {
	for _, body := range []string{`{"entity":"product"}`, `{"entity":"user"}`} {
		if st := s.waitRun(s.startRun(body), 120*time.Second); st.RuntimeStatus == "Completed" {
			rep.RunsCompleted++
		}
	}
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

// rows are the ids every writer picks from, so that writers (and the
// second instance) change the same rows.
type rows struct {
	mu              sync.Mutex
	products, users []int64
}

func (r *rows) add(e domain.Entity, id int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e == domain.EntityProduct {
		r.products = append(r.products, id)
	} else {
		r.users = append(r.users, id)
	}
}

// pick returns a random id of e, or 0 if there is none yet.
func (r *rows) pick(rng *rand.Rand, e domain.Entity) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := r.products
	if e == domain.EntityUser {
		ids = r.users
	}
	if len(ids) == 0 {
		return 0
	}
	return ids[rng.IntN(len(ids))]
}

// patch is a random PATCH body for a product: one or two fields, values
// unique to the write (so a field's change time always moves).
func patch(r *rand.Rand, tag string) (string, map[string]string) {
	f := map[string]string{}
	switch r.IntN(3) {
	case 0:
		f["name"] = "n " + tag
	case 1:
		f["description"] = "d " + tag
	default:
		f["price"] = fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))
	}
	if r.IntN(3) == 0 {
		f["description"] = "d2 " + tag
	}
	b, _ := json.Marshal(f)
	return string(b), f
}

// step makes one random write through the API; ok reports an acknowledged
// write, and a zero entity a step that sent nothing. Deleted rows stay in
// the pool: editing them again is part of the drill (404, or a concurrent
// edit on a stale side, which the delete must win).
func (d drill) step(s *stack, r *rand.Rand, w, n int, pool *rows) (ack, bool) {
	tag := fmt.Sprintf("%d-%d", w, n)
	switch x := r.IntN(100); {
	case x < 25 || pool.pick(r, domain.EntityProduct) == 0:
		var p apiProduct
		name, price := "w"+tag, fmt.Sprintf("%d.%02d", r.IntN(1000), r.IntN(100))
		code, body := s.write("POST", "/api/products", fmt.Sprintf(`{"name":%q,"price":%q}`, name, price), &p)
		if code != http.StatusCreated {
			return ack{entity: domain.EntityProduct, notFound: code == http.StatusNotFound}, false
		}
		pool.add(domain.EntityProduct, p.ID)
		return ack{entity: domain.EntityProduct, id: p.ID, version: parseTime(body.UpdatedAt),
			fields: map[string]string{"name": name, "price": body.Price, "description": ""}}, true
	case x < 70:
		id := pool.pick(r, domain.EntityProduct)
		body, fields := patch(r, tag)
		var p apiProduct
		code, got := s.write("PATCH", fmt.Sprintf("/api/products/%d", id), body, &p)
		if code != http.StatusOK {
			return ack{entity: domain.EntityProduct, id: id, notFound: code == http.StatusNotFound}, false
		}
		if v, ok := fields["price"]; ok {
			fields["price"] = normPrice(v)
		}
		return ack{entity: domain.EntityProduct, id: id, version: parseTime(got.UpdatedAt), fields: fields}, true
	case x < 80:
		id := pool.pick(r, domain.EntityProduct)
		code, _ := s.write("DELETE", fmt.Sprintf("/api/products/%d", id), "", nil)
		if code != http.StatusNoContent {
			return ack{entity: domain.EntityProduct, id: id, deleted: true, notFound: code == http.StatusNotFound}, false
		}
		return ack{entity: domain.EntityProduct, id: id, deleted: true}, true
	case x < 90 || pool.pick(r, domain.EntityUser) == 0:
		var u apiProduct // same id/name/updatedAt fields
		name := "u" + tag
		code, body := s.write("POST", "/api/users", fmt.Sprintf(`{"name":%q,"email":"w%s-%d@example.com"}`, name, tag, d.Seed), &u)
		if code != http.StatusCreated {
			return ack{entity: domain.EntityUser, notFound: code == http.StatusNotFound}, false
		}
		pool.add(domain.EntityUser, u.ID)
		return ack{entity: domain.EntityUser, id: u.ID, version: parseTime(body.UpdatedAt), fields: map[string]string{"name": name}}, true
	default:
		id := pool.pick(r, domain.EntityUser)
		name := "renamed " + tag
		var u apiProduct
		code, body := s.write("PATCH", fmt.Sprintf("/api/users/%d", id), fmt.Sprintf(`{"name":%q}`, name), &u)
		if code != http.StatusOK {
			return ack{entity: domain.EntityUser, id: id, notFound: code == http.StatusNotFound}, false
		}
		return ack{entity: domain.EntityUser, id: id, version: parseTime(body.UpdatedAt), fields: map[string]string{"name": name}}, true
	}
}

// direct is one write of the second instance, straight to db. A failed
// write is returned with its id (ambiguous unless the row was not found).
func (d drill) direct(db store.DB, r *rand.Rand, n int, pool *rows) (ack, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	tag := fmt.Sprintf("x%s-%d", db.Role(), n)
	failed := func(a ack, err error) (ack, bool) {
		a.notFound = domain.IsKind(err, domain.KindNotFound)
		return a, false
	}
	if r.IntN(4) == 0 {
		id := pool.pick(r, domain.EntityUser)
		if id == 0 {
			return ack{}, false
		}
		name := "renamed " + tag
		u, err := db.UpdateUser(ctx, id, domain.UserChange{Name: &name})
		if err != nil {
			return failed(ack{entity: domain.EntityUser, id: id}, err)
		}
		return ack{entity: domain.EntityUser, id: id, version: u.UpdatedAt, fields: map[string]string{"name": name}}, true
	}
	id := pool.pick(r, domain.EntityProduct)
	if id == 0 {
		return ack{}, false
	}
	if r.IntN(8) == 0 {
		if err := db.DeleteProduct(ctx, id); err != nil {
			return failed(ack{entity: domain.EntityProduct, id: id, deleted: true}, err)
		}
		return ack{entity: domain.EntityProduct, id: id, deleted: true}, true
	}
	body, fields := patch(r, tag)
	c, err := domain.DecodeProduct([]byte(body), domain.ModePatch)
	if err != nil {
		return ack{}, false
	}
	p, err := db.UpdateProduct(ctx, id, c)
	if err != nil {
		return failed(ack{entity: domain.EntityProduct, id: id}, err)
	}
	if v, ok := fields["price"]; ok {
		fields["price"] = normPrice(v)
	}
	return ack{entity: domain.EntityProduct, id: id, version: p.UpdatedAt, fields: fields}, true
}

func normPrice(s string) string {
	m, err := domain.ParseMoney(s)
	if err != nil {
		return s
	}
	return m.String()
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
			checkDrill(t, rep)
		})
	}
}

// checkDrill fails t unless the drill converged: writes acknowledged, the
// databases identical, every acknowledged write in both, the model check
// clean, both full runs completed.
func checkDrill(t *testing.T, rep drillReport) {
	t.Helper()
	if rep.Acked == 0 {
		t.Fatal("no write was acknowledged")
	}
	if len(rep.RowsDiffering) != 0 {
		t.Errorf("rows differing: %v", rep.RowsDiffering)
	}
	if len(rep.Model.Violations) != 0 || rep.Model.Checked == 0 {
		t.Errorf("model check: %+v", rep.Model)
	}
	if len(rep.NotReached) != 0 {
		t.Errorf("acknowledged writes missing from a database: %v", rep.NotReached)
	}
	if rep.RunsCompleted != 2 {
		t.Errorf("full runs completed: %d of 2", rep.RunsCompleted)
	}
}

// modelReport is the outcome of checking the final rows against the merge
// rules.
type modelReport struct {
	Checked, Ambiguous, Merged int
	Violations                 []string
}

// checkModel checks every row an acknowledged write touched against a model
// of the merge rules, independent of the sync code:
//   - a row with an acknowledged delete is a tombstone (a delete wins over
//     any concurrent edit), and a row nobody tried to delete is live;
//   - each field holds the value of the acknowledged write that set it
//     last, by the write's time (field-by-field merge: concurrent edits of
//     different fields both survive; of the same field, the later wins).
//
// A row with an unanswered write (which may or may not have applied) is
// checked for deletes only.
func checkModel(t *testing.T, db store.DB, acks []ack) modelReport {
	t.Helper()
	type key struct {
		e  domain.Entity
		id int64
	}
	type latest struct {
		at     time.Time
		values map[string]bool
	}
	type rowModel struct {
		deleted, mayDelete, ambiguous bool
		fields                        map[string]*latest
	}
	model := map[key]*rowModel{}
	for _, a := range acks {
		k := key{a.entity, a.id}
		m := model[k]
		if m == nil {
			m = &rowModel{fields: map[string]*latest{}}
			model[k] = m
		}
		switch {
		case a.ambiguous && a.deleted:
			m.mayDelete = true
		case a.ambiguous:
			m.ambiguous = true
		case a.deleted:
			m.deleted = true
		}
		if a.ambiguous {
			continue
		}
		for f, v := range a.fields {
			l := m.fields[f]
			switch {
			case l == nil || a.version.After(l.at):
				m.fields[f] = &latest{at: a.version, values: map[string]bool{v: true}}
			case a.version.Equal(l.at):
				l.values[v] = true // same millisecond on both sides: either may win
			}
		}
	}
	var rep modelReport
	ctx := context.Background()
	for k, m := range model {
		var (
			values  map[string]string
			deleted bool
			ver     domain.Vector
			ok      bool
			err     error
		)
		if k.e == domain.EntityProduct {
			var p domain.Product
			p, ok, err = db.LoadProduct(ctx, k.id)
			values = map[string]string{"name": p.Name, "description": p.Description, "price": p.Price.String()}
			deleted, ver = p.Deleted(), p.Ver
		} else {
			var u domain.User
			u, ok, err = db.LoadUser(ctx, k.id)
			values = map[string]string{"name": u.Name}
			deleted, ver = u.Deleted(), u.Ver
		}
		if err != nil {
			t.Fatalf("load %s %d: %v", k.e, k.id, err)
		}
		rep.Checked++
		if ver.P > 0 && ver.F > 0 {
			rep.Merged++ // written on both sides at some point
		}
		name := fmt.Sprintf("%s %d", k.e, k.id)
		switch {
		case !ok:
			rep.Violations = append(rep.Violations, name+": missing")
			continue
		case m.deleted && !deleted:
			rep.Violations = append(rep.Violations, name+": an acknowledged delete was undone")
		case !m.deleted && !m.mayDelete && deleted:
			rep.Violations = append(rep.Violations, name+": deleted, but nobody deleted it")
		}
		if m.ambiguous {
			rep.Ambiguous++
			continue
		}
		for f, l := range m.fields {
			if !l.values[values[f]] {
				rep.Violations = append(rep.Violations, fmt.Sprintf("%s: %s = %q, want the last acknowledged value %v (at %s)",
					name, f, values[f], l.values, domain.FormatTime(l.at)))
			}
		}
	}
	sort.Strings(rep.Violations)
	return rep
}
