package explore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/syncer"
)

// kind is what a step does.
type kind uint8

const (
	kWrite     kind = iota // an API write
	kDeliver               // deliver a queued message (maybe losing its ack, or duplicated first)
	kCrash                 // deliver a message with a fault on its k-th operation of one store
	kOutage                // a database or the queue goes down or comes back
	kBackup                // a backup of one database
	kRestore               // restore one database from a backup (or rebuild it) and restart every instance
	kRestart               // restart one instance's process
	kRun                   // start a full or diff run
	kRelay                 // the outbox relay
	kRetention             // a retention pass, maybe crashing between purges
	kFlush                 // an instance's publisher sends what it holds, as one message per database and entity
	kCheck                 // an instance's periodic check of both databases' histories
	kTick                  // time passes
	nKinds
)

// weights of each kind in generated histories.
var weights = [nKinds]int{kWrite: 34, kDeliver: 26, kCrash: 9, kOutage: 5, kBackup: 5, kRestore: 3, kRestart: 3,
	kRun: 4, kRelay: 4, kRetention: 3, kFlush: 3, kCheck: 2, kTick: 3}

// Step is one step of a history. Its parameters are raw random numbers,
// interpreted against the state when the step runs (an index modulo the
// items there are), so that any sub-sequence of a history is a history.
type Step struct {
	Kind kind
	P    [6]int
	DT   time.Duration // time passing before the step
}

// History is a generated history: the instances' clock offsets and steps.
type History struct {
	Seed    uint64
	Offsets []time.Duration
	Steps   []Step
}

// maxOffset is the clock offset bound (README: Azure keeps instance clocks
// within a second or so of UTC; restarts are further apart than twice it).
const maxOffset = 400 * time.Millisecond

// Generate returns the history of seed: 2-3 instances, 10-40 steps.
func Generate(seed uint64) History {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	h := History{Seed: seed}
	for range 2 + rng.IntN(2) {
		h.Offsets = append(h.Offsets, time.Duration(rng.Int64N(int64(2*maxOffset)))-maxOffset)
	}
	total := 0
	for _, wt := range weights {
		total += wt
	}
	n := 10 + rng.IntN(31)
	for range n {
		var s Step
		x := rng.IntN(total)
		for k, wt := range weights {
			if x < wt {
				s.Kind = kind(k)
				break
			}
			x -= wt
		}
		for i := range s.P {
			s.P[i] = rng.IntN(1 << 16)
		}
		s.DT = time.Duration(1+rng.IntN(300)) * time.Millisecond
		if s.Kind == kTick {
			s.DT = time.Duration(1+rng.IntN(30)) * time.Second
		}
		h.Steps = append(h.Steps, s)
	}
	return h
}

// exec runs step i; it returns what it did.
func (w *world) exec(i int, s Step) string {
	w.now = w.now.Add(s.DT)
	in := w.insts[s.P[0]%len(w.insts)]
	switch s.Kind {
	case kWrite:
		return w.apiWrite(i, s)
	case kDeliver:
		m := w.q.pick(s.P[1])
		if m == nil {
			return "deliver: queue empty"
		}
		mode := s.P[2] % 6
		switch mode {
		case 0:
			w.q.duplicate(m)
			return fmt.Sprintf("duplicate %s, then deliver to i%d: %s", m, in.n, w.deliver(m, in, false))
		case 1:
			return fmt.Sprintf("deliver %s to i%d, its deletion lost: %s", m, in.n, w.deliver(m, in, true))
		}
		return fmt.Sprintf("deliver %s to i%d: %s", m, in.n, w.deliver(m, in, false))
	case kCrash:
		m := w.q.pick(s.P[1])
		if m == nil {
			return "crash delivery: queue empty"
		}
		k, after := 1+s.P[3]%8, s.P[4]%2 == 1
		var f *fault
		var target string
		switch s.P[2] % 3 {
		case 0:
			f, target = w.fault[store.RolePrimary], "primary"
		case 1:
			f, target = w.fault[store.RoleFallback], "fallback"
		default:
			f, target = w.recF, "table storage"
		}
		f.arm(k, after, "")
		res := w.deliver(m, in, false)
		fired := f.disarm()
		when := "before"
		if after {
			when = "after"
		}
		d := fmt.Sprintf("deliver %s to i%d, %s op #%d fails %s applying (fired %v): %s", m, in.n, target, k, when, fired, res)
		if fired && s.P[5]%2 == 0 {
			w.now = w.now.Add(restartGap)
			w.start(in)
			d += fmt.Sprintf("; i%d restarts", in.n)
		}
		return d
	case kOutage:
		down := s.P[2]%2 == 0
		switch s.P[1] % 3 {
		case 0, 1:
			r := []store.Role{store.RolePrimary, store.RoleFallback}[s.P[1]%3]
			w.fault[r].mu.Lock()
			w.fault[r].down = down
			w.fault[r].mu.Unlock()
			return fmt.Sprintf("%s down: %v", r, down)
		}
		w.q.mu.Lock()
		w.q.Down = down
		w.q.mu.Unlock()
		return fmt.Sprintf("queue down: %v", down)
	case kBackup:
		r := roleOf(s.P[1])
		snap := &snapshot{role: r, snap: w.b.backup(r), taken: w.now, step: i, held: clone(w.held[r])}
		w.snaps = append(w.snaps, snap)
		return fmt.Sprintf("backup %s (b%d)", r, len(w.snaps)-1)
	case kRestore:
		return w.restore(s)
	case kRestart:
		w.now = w.now.Add(restartGap)
		w.start(in)
		return fmt.Sprintf("i%d restarts", in.n)
	case kRun:
		e := entityOf(s.P[1])
		mode := syncer.ModeFull
		if s.P[2]%2 == 1 {
			mode = syncer.ModeDiff
		}
		st, err := in.eng.Start(w.ctx, syncer.StartRequest{Trigger: "http", Entity: e, Mode: mode})
		if err != nil {
			return fmt.Sprintf("i%d starts a %s %s run: %v", in.n, mode, e, err)
		}
		return fmt.Sprintf("i%d starts a %s %s run %s", in.n, mode, e, shortRun(st.InstanceID))
	case kRelay:
		return fmt.Sprintf("i%d relays: %s", in.n, errText(in.eng.Relay(w.ctx)))
	case kRetention:
		d := fmt.Sprintf("i%d retention pass", in.n)
		var f *fault
		if c := s.P[1] % 4; c > 0 {
			r := roleOf(s.P[2])
			f = w.fault[r]
			f.arm(c, s.P[3]%2 == 1, "PurgeTombstones")
			d += fmt.Sprintf(" (%s's purge #%d fails)", r, c)
		}
		err := in.eng.Retain(w.ctx)
		if f != nil {
			f.disarm()
		}
		return d + ": " + errText(err)
	case kFlush:
		return w.flush(in)
	case kCheck:
		return fmt.Sprintf("i%d checks the databases: %s", in.n, errText(in.eng.CheckDatabases(w.ctx)))
	case kTick:
		return fmt.Sprintf("%v pass", s.DT)
	}
	return "?"
}

// restartGap is how long a process restart takes: more than twice the
// clock offset bound, so that a restarted process's floor is above its
// predecessors' (docs/merge.md, Clocks).
const restartGap = 1200 * time.Millisecond

func roleOf(n int) store.Role {
	if n%2 == 0 {
		return store.RolePrimary
	}
	return store.RoleFallback
}

func entityOf(n int) domain.Entity {
	if n%2 == 0 {
		return domain.EntityProduct
	}
	return domain.EntityUser
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return "error: " + err.Error()
}

func clone(m map[itemKey]uint64) map[itemKey]uint64 {
	c := make(map[itemKey]uint64, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// restore puts a database back to a backup (or rebuilds it empty) and
// restarts every instance, as the runbook does. A backup older than the
// tombstone retention is not restored: README's precondition.
func (w *world) restore(s Step) string {
	r := roleOf(s.P[1])
	var cands []*snapshot
	for _, sn := range w.snaps {
		if sn.role == r && (sn.initial || w.now.Sub(sn.taken) < tombstoneRetention) {
			cands = append(cands, sn)
		}
	}
	rebuild := s.P[3]%4 == 0
	if !rebuild && len(cands) == 1 {
		return fmt.Sprintf("restore %s: no backup recent enough", r)
	}
	sn := cands[0] // the initial (empty) one
	if !rebuild {
		sn = cands[1+s.P[2]%(len(cands)-1)]
	}
	// Writes the database held that the backup lacks are lost unless the
	// other database holds them (for good: a later restore may bring one
	// back, and then it may supersede older values, but it is owed nothing).
	o := other(r)
	for _, wr := range w.writes {
		bit := uint64(1) << wr.idx
		if w.held[r][wr.key]&bit != 0 && sn.held[wr.key]&bit == 0 && w.held[o][wr.key]&bit == 0 {
			wr.lost = true
		}
	}
	if sn.initial {
		w.b.rebuild(r)
	} else {
		w.b.restore(r, sn.snap)
	}
	w.held[r] = clone(sn.held)
	w.restores++
	w.now = w.now.Add(restartGap)
	for _, in := range w.insts {
		w.start(in)
	}
	if rebuild {
		return fmt.Sprintf("%s rebuilt empty; every instance restarts", r)
	}
	return fmt.Sprintf("%s restored from backup of step %d; every instance restarts", r, sn.step)
}

// changed is the failover wrapper's OnChange (and the direct writes'): it
// notes the database that took the write and publishes it as the step says.
func (w *world) changed(in *instance, db store.DB, e domain.Entity, id, counter int64) {
	w.side = db.Role()
	switch w.publish {
	case 0:
		in.eng.Changed(w.ctx, db, e, id, counter)
	case 1:
		in.held = append(in.held, heldChange{db, e, id, counter})
	}
}

// flush publishes what an instance holds, one message per database and
// entity (a batch when several).
func (w *world) flush(in *instance) string {
	if len(in.held) == 0 {
		return fmt.Sprintf("i%d publishes: nothing held", in.n)
	}
	groups := map[string][]syncer.Change{}
	var order []string
	for _, c := range in.held {
		k := string(c.db.Role()) + "/" + string(c.e)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], syncer.Change{DB: c.db, Entity: c.e, ID: c.id, Counter: c.counter})
	}
	n := len(in.held)
	in.held = nil
	for _, k := range order {
		in.eng.Publish(w.ctx, groups[k])
	}
	return fmt.Sprintf("i%d publishes %d held changes", in.n, n)
}

// apiWrite runs one API write: through the failover wrapper, or straight
// on one database as an instance whose breaker disagrees would.
func (w *world) apiWrite(i int, s Step) string {
	in := w.insts[s.P[0]%len(w.insts)]
	e := entityOf(s.P[1])
	op := []string{"create", "update", "patch", "delete"}[(s.P[1]/2)%4]
	known := w.known[e]
	if len(known) == 0 || len(w.writes) >= maxWrites-1 && op == "create" {
		op = "create"
	}
	if len(w.writes) >= maxWrites {
		return "write: enough writes"
	}
	var id int64
	if op != "create" {
		// Mostly the first few items, so that writes meet on rows.
		n := len(known)
		if s.P[2]%4 != 0 {
			n = min(n, 2)
		}
		id = known[(s.P[2]/4)%n]
	}
	route := []string{"failover", "failover", "primary", "fallback"}[s.P[3]%4]
	w.publish = []int{0, 0, 1, 2}[s.P[4]%4]
	pub := []string{"", ", publish held", ", publish lost"}[w.publish]
	w.side = ""
	var api apiDB = in.fo
	switch route {
	case "primary":
		api = directDB{in.gp, func(db store.DB, e domain.Entity, id, c int64) { w.changed(in, db, e, id, c) }}
	case "fallback":
		api = directDB{in.gf, func(db store.DB, e domain.Entity, id, c int64) { w.changed(in, db, e, id, c) }}
	}
	desc := fmt.Sprintf("i%d %s %s", in.n, op, e)
	if id != 0 {
		desc += fmt.Sprintf(" %d", id)
	}
	desc += " via " + route + pub
	wr := &write{idx: len(w.writes), step: i, kind: op}
	var err error
	if e == domain.EntityProduct {
		err = w.productWrite(api, wr, op, id, s.P[5])
	} else {
		err = w.userWrite(api, wr, op, id, s.P[5])
	}
	if err != nil {
		return desc + ": " + errText(err)
	}
	wr.side = w.side
	if op == "create" {
		if prev, ok := w.ids[wr.key]; ok && !w.writes[prev].lost {
			w.violate("id_reused", "step %d: %s %d created again on the %s (first created by write %d at step %d)",
				i, e, wr.key.id, wr.side, prev, w.writes[prev].step)
		}
		w.ids[wr.key] = wr.idx
		w.known[e] = append(w.known[e], wr.key.id)
	}
	if op == "delete" {
		v, _ := w.loadVer(wr.side, wr.key)
		wr.counter = store.Own(wr.side, v)
	}
	w.writes = append(w.writes, wr)
	w.held[wr.side][wr.key] |= 1 << wr.idx
	return fmt.Sprintf("%s: ok on the %s (w%d%s)", desc, wr.side, wr.idx, obsText(wr.key, wr.obs))
}

func obsText(k itemKey, os []obs) string {
	out := ""
	if k.id != 0 {
		out = fmt.Sprintf(", id %d", k.id)
	}
	for _, o := range os {
		out += fmt.Sprintf(", %s=%s@%s", o.field, o.value, o.at.Format("05.000"))
	}
	return out
}

func (w *world) value(prefix string) string {
	w.values++
	return fmt.Sprintf("%s%d", prefix, w.values)
}

func (w *world) productWrite(api apiDB, wr *write, op string, id int64, mask int) error {
	var c domain.ProductChange
	set := func(bit int, fn func()) {
		if op == "create" || op == "update" || mask&bit != 0 {
			fn()
		}
	}
	if op == "patch" && mask%8 == 0 {
		mask = 1
	}
	set(1, func() { v := w.value("n"); c.Name = &v })
	set(2, func() {
		v := w.value("d")
		if op != "patch" && mask&8 != 0 {
			v = "" // a PUT without description clears it
		}
		c.Description = &v
	})
	set(4, func() { w.values++; m := domain.Money(w.values * 100); c.Price = &m })
	var (
		p   domain.Product
		err error
	)
	switch op {
	case "create":
		p, err = api.CreateProduct(w.ctx, c)
	case "update", "patch":
		p, err = api.UpdateProduct(w.ctx, id, c)
	case "delete":
		wr.key = itemKey{domain.EntityProduct, id}
		return api.DeleteProduct(w.ctx, id)
	}
	if err != nil {
		return err
	}
	wr.key = itemKey{domain.EntityProduct, p.ID}
	wr.counter = store.Own(w.side, p.Ver)
	for _, f := range []struct {
		name, v string
		at      time.Time
	}{{"name", p.Name, p.NameAt}, {"description", p.Description, p.DescriptionAt}, {"price", p.Price.String(), p.PriceAt}} {
		if op == "create" || f.at.Equal(p.UpdatedAt) {
			wr.obs = append(wr.obs, obs{f.name, f.v, f.at})
		}
	}
	return nil
}

func (w *world) userWrite(api apiDB, wr *write, op string, id int64, mask int) error {
	var c domain.UserChange
	if op == "patch" && mask%4 == 0 {
		mask = 1
	}
	if op != "patch" || mask&1 != 0 {
		v := w.value("n")
		c.Name = &v
	}
	if op != "patch" || mask&2 != 0 {
		v := w.value("u") + "@example.com" // unique: no email clashes
		c.Email = &v
	}
	var (
		u   domain.User
		err error
	)
	switch op {
	case "create":
		u, err = api.CreateUser(w.ctx, c)
	case "update", "patch":
		u, err = api.UpdateUser(w.ctx, id, c)
	case "delete":
		wr.key = itemKey{domain.EntityUser, id}
		return api.DeleteUser(w.ctx, id)
	}
	if err != nil {
		return err
	}
	wr.key = itemKey{domain.EntityUser, u.ID}
	wr.counter = store.Own(w.side, u.Ver)
	for _, f := range []struct {
		name, v string
		at      time.Time
	}{{"name", u.Name, u.NameAt}, {"email", u.Email, u.EmailAt}} {
		if op == "create" || f.at.Equal(u.UpdatedAt) {
			wr.obs = append(wr.obs, obs{f.name, f.v, f.at})
		}
	}
	return nil
}

// apiDB is what an API write goes through: the failover wrapper, or one
// database straight (an instance whose breaker disagrees).
type apiDB interface {
	CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error)
	UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error)
	DeleteProduct(ctx context.Context, id int64) error
	CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error)
	UpdateUser(ctx context.Context, id int64, c domain.UserChange) (domain.User, error)
	DeleteUser(ctx context.Context, id int64) error
}

// directDB writes on one database and reports the change as the failover
// wrapper's OnChange does.
type directDB struct {
	db store.DB
	on func(db store.DB, e domain.Entity, id, counter int64)
}

func (d directDB) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	p, err := d.db.CreateProduct(ctx, c)
	if err == nil {
		d.on(d.db, domain.EntityProduct, p.ID, store.Own(d.db.Role(), p.Ver))
	}
	return p, err
}

func (d directDB) UpdateProduct(ctx context.Context, id int64, c domain.ProductChange) (domain.Product, error) {
	p, err := d.db.UpdateProduct(ctx, id, c)
	if err == nil {
		d.on(d.db, domain.EntityProduct, p.ID, store.Own(d.db.Role(), p.Ver))
	}
	return p, err
}

func (d directDB) DeleteProduct(ctx context.Context, id int64) error {
	err := d.db.DeleteProduct(ctx, id)
	if err == nil {
		d.on(d.db, domain.EntityProduct, id, math.MaxInt64)
	}
	return err
}

func (d directDB) CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error) {
	u, err := d.db.CreateUser(ctx, c)
	if err == nil {
		d.on(d.db, domain.EntityUser, u.ID, store.Own(d.db.Role(), u.Ver))
	}
	return u, err
}

func (d directDB) UpdateUser(ctx context.Context, id int64, c domain.UserChange) (domain.User, error) {
	u, err := d.db.UpdateUser(ctx, id, c)
	if err == nil {
		d.on(d.db, domain.EntityUser, u.ID, store.Own(d.db.Role(), u.Ver))
	}
	return u, err
}

func (d directDB) DeleteUser(ctx context.Context, id int64) error {
	err := d.db.DeleteUser(ctx, id)
	if err == nil {
		d.on(d.db, domain.EntityUser, id, math.MaxInt64)
	}
	return err
}
