package explore

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math/bits"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/failover"
	"dualsync/internal/ids"
	"dualsync/internal/memdb"
	"dualsync/internal/store"
	"dualsync/internal/syncer"
)

// Engine settings: small pages and ranges so that a handful of rows makes
// runs of several pages and ranges; one send worker keeps the queue's order
// a function of the history (reproducible).
const (
	pageSize           = 3
	rangeSize          = 3
	rangesPerPage      = 2
	tombstoneRetention = 20 * time.Second
	maxWrites          = 64 // writes are tracked in a uint64 per item
)

// epoch is the explorer's clock start. It lies ahead of real time, so that
// what the engine stamps with time.Now (a regression's finding) is older
// than every run the fake clock creates.
var epoch = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// fault is the fault state of one database (its Fail/FailAfter hooks) or of
// the recorder.
type fault struct {
	mu      sync.Mutex
	down    bool // every operation fails: an outage
	crashK  int  // fail the crashK-th operation from now (0: none)
	after   bool // ... after it is applied (a lost answer) rather than before
	only    string
	ops     int
	fired   bool
	applied bool // a failure fired after the change was applied
	bypass  bool // the explorer's own reads go through
}

func (f *fault) arm(k int, after bool, only string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.crashK, f.after, f.only, f.ops, f.fired, f.applied = k, after, only, 0, false, false
}

func (f *fault) disarm() (fired bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fired = f.fired
	f.crashK, f.fired, f.applied = 0, false, false
	return fired
}

// hit counts op and reports whether the armed crash fires on it.
func (f *fault) hit(op string, after bool) bool {
	if f.crashK == 0 || f.after != after || f.fired || (f.only != "" && f.only != op) {
		return false
	}
	f.ops++
	if f.ops == f.crashK {
		f.fired = true
		f.applied = after
		return true
	}
	return false
}

func (f *fault) before(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bypass {
		return nil
	}
	if f.down || f.hit(op, false) {
		return memdb.Unreached(op)
	}
	return nil
}

func (f *fault) afterOp(op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bypass {
		return nil
	}
	if f.hit(op, true) {
		return memdb.Uncertain(op)
	}
	return nil
}

func (f *fault) setBypass(b bool) {
	f.mu.Lock()
	f.bypass = b
	f.mu.Unlock()
}

func (f *fault) recorder(op string, after bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down || f.hit(op, after) {
		return domain.Errorf(domain.KindUnavailable, "explore recorder: injected fault on %s", op)
	}
	return nil
}

// lockedBuffer collects the engine's JSON log lines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// write is one acknowledged API write.
type write struct {
	idx     int
	step    int
	side    store.Role
	key     itemKey
	kind    string // create, update, patch, delete
	counter int64  // the writing side's vector entry after the write
	obs     []obs  // the fields it changed, as acknowledged
	lost    bool   // on a database restored to before it while the other lacked it
}

// obs is one acknowledged field value and its change time.
type obs struct {
	field, value string
	at           time.Time
}

// snapshot is a backup with what its database held.
type snapshot struct {
	role    store.Role
	snap    any // the backend's backup; nil for the initial (empty) one
	taken   time.Time
	step    int
	held    map[itemKey]uint64
	initial bool // the empty database right after migration: a rebuild
}

// heldChange is a change an instance's publisher holds (not yet sent).
type heldChange struct {
	db      store.DB
	e       domain.Entity
	id      int64
	counter int64
}

// instance is one handler process: its handles on both databases (its
// floor), its failover wrapper, its id guards and its sync engine.
type instance struct {
	n      int
	offset time.Duration
	gen    int // restarts
	p, f   store.DB
	tp, tf *tracked
	gp, gf *ids.Guard
	fo     *failover.Failover
	eng    *syncer.Engine
	held   []heldChange
}

// runItem names one item of one run.
type runItem struct {
	run string
	key itemKey
}

// world is one history being run.
type world struct {
	ctx   context.Context
	now   time.Time
	b     backend
	fault map[store.Role]*fault
	recF  *fault
	look  map[store.Role]store.DB // the explorer's own handles (bypassing faults)
	q     *Queue
	rec   recorder
	logs  *lockedBuffer
	log   *slog.Logger
	insts []*instance

	writes   []*write
	held     map[store.Role]map[itemKey]uint64 // which writes each database holds
	snaps    []*snapshot
	purged   map[itemKey]bool
	restores int
	ids      map[itemKey]int // id -> index of the create that returned it
	known    map[domain.Entity][]int64
	values   int // unique value counter

	publish int                  // how the write under way is published (see changed)
	side    store.Role           // the database that took the write under way
	cur     *runItem             // the run item being delivered
	wrote   map[runItem][]string // intents in force when a run item's delivery wrote
	viols   []Violation
	desc    []string // what each step did, for a readable history
}

func newWorld(offsets []time.Duration, b backend) *world {
	w := &world{
		ctx:    context.Background(),
		now:    epoch,
		b:      b,
		fault:  map[store.Role]*fault{},
		recF:   &fault{},
		look:   map[store.Role]store.DB{},
		q:      &Queue{},
		logs:   &lockedBuffer{},
		held:   map[store.Role]map[itemKey]uint64{store.RolePrimary: {}, store.RoleFallback: {}},
		purged: map[itemKey]bool{},
		ids:    map[itemKey]int{},
		known:  map[domain.Entity][]int64{},
		wrote:  map[runItem][]string{},
	}
	w.log = slog.New(slog.NewJSONHandler(w.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w.rec = b.recorder(w.recF, func() time.Time { return w.now })
	for _, r := range []store.Role{store.RolePrimary, store.RoleFallback} {
		w.fault[r] = &fault{}
		w.look[r] = b.open(r, func() time.Time { return w.now }, w.fault[r])
		if err := w.look[r].Migrate(w.ctx); err != nil {
			panic(err)
		}
		w.snaps = append(w.snaps, &snapshot{role: r, taken: w.now, held: map[itemKey]uint64{}, initial: true})
	}
	for i, off := range offsets {
		in := &instance{n: i, offset: off}
		w.start(in)
		w.insts = append(w.insts, in)
	}
	return w
}

func other(r store.Role) store.Role {
	if r == store.RolePrimary {
		return store.RoleFallback
	}
	return store.RolePrimary
}

// start starts (or restarts) an instance's process: new handles (a new
// floor), a new engine, its id guards and its start-up check.
func (w *world) start(in *instance) {
	if in.p != nil {
		in.p.Close()
		in.f.Close()
	}
	in.gen++
	in.held = nil
	clock := func() time.Time { return w.now.Add(in.offset) }
	in.p = w.b.open(store.RolePrimary, clock, w.fault[store.RolePrimary])
	in.f = w.b.open(store.RoleFallback, clock, w.fault[store.RoleFallback])
	in.tp, in.tf = &tracked{DB: in.p, w: w, role: store.RolePrimary}, &tracked{DB: in.f, w: w, role: store.RoleFallback}
	in.eng = syncer.New(in.tp, in.tf, w.q, w.q, w.rec, syncer.Options{
		Logger: w.log, Clock: clock, PageSize: pageSize, SendWorkers: 1,
		RangeSize: rangeSize, RangesPerPage: rangesPerPage, RangeWorkers: 1,
		TombstoneRetention: tombstoneRetention,
	})
	in.gp = ids.NewGuard(in.p, in.f, ids.Options{Logger: w.log})
	in.gf = ids.NewGuard(in.f, in.p, ids.Options{Logger: w.log})
	in.fo = failover.New(in.gp, in.gf, failover.Options{Cooldown: time.Nanosecond, Logger: w.log,
		OnChange: func(ctx context.Context, db store.DB, e domain.Entity, id, counter int64) {
			w.changed(in, db, e, id, counter)
		}})
	_ = in.p.Migrate(w.ctx)
	_ = in.f.Migrate(w.ctx)
	_ = in.gp.Ensure(w.ctx, true)
	_ = in.gf.Ensure(w.ctx, true)
	_ = in.eng.CheckDatabases(w.ctx)
}

// inspect runs fn with the explorer's handle on db, faults bypassed.
func (w *world) inspect(r store.Role, fn func(db store.DB)) {
	w.fault[r].setBypass(true)
	defer w.fault[r].setBypass(false)
	fn(w.look[r])
}

// loadVer returns the vector of an item in database r.
func (w *world) loadVer(r store.Role, k itemKey) (domain.Vector, bool) {
	var (
		v  domain.Vector
		ok bool
	)
	w.inspect(r, func(db store.DB) {
		if k.e == domain.EntityUser {
			u, found, _ := db.LoadUser(w.ctx, k.id)
			v, ok = u.Ver, found
			return
		}
		p, found, _ := db.LoadProduct(w.ctx, k.id)
		v, ok = p.Ver, found
	})
	return v, ok
}

// synced records that sync wrote row version v of item k into database r:
// r now holds the writes either database held that v has seen.
func (w *world) synced(r store.Role, k itemKey, v domain.Vector) {
	all := w.held[store.RolePrimary][k] | w.held[store.RoleFallback][k]
	var s uint64
	for b := all; b != 0; b &= b - 1 {
		wr := w.writes[bits.TrailingZeros64(b)]
		if wr.counter <= store.Own(wr.side, v) {
			s |= 1 << wr.idx
		}
	}
	w.held[r][k] = s
	if w.cur != nil && w.cur.key == k {
		in, _ := w.rec.intent(w.cur.run, k.e, k.id)
		w.wrote[*w.cur] = append(w.wrote[*w.cur], in.Status)
	}
}

// tracked is the engine's handle on one database: it tells the explorer
// which rows sync wrote (to follow which database holds which write).
type tracked struct {
	store.DB
	w    *world
	role store.Role
}

// after records the rows of puts that are now in place, whatever the call
// returned (a failure after the commit leaves them).
func (t *tracked) after(k itemKey, v domain.Vector) {
	if cur, ok := t.w.loadVer(t.role, k); ok && cur == v {
		t.w.synced(t.role, k, v)
	}
}

func (t *tracked) PutProduct(ctx context.Context, p domain.Product, expect *domain.Vector) (store.PutResult, error) {
	res, err := t.DB.PutProduct(ctx, p, expect)
	t.after(itemKey{domain.EntityProduct, p.ID}, p.Ver)
	return res, err
}

func (t *tracked) PutProducts(ctx context.Context, puts []store.ProductPut) ([]store.PutResult, error) {
	res, err := t.DB.PutProducts(ctx, puts)
	for _, put := range puts {
		t.after(itemKey{domain.EntityProduct, put.Product.ID}, put.Product.Ver)
	}
	return res, err
}

func (t *tracked) PutUser(ctx context.Context, u domain.User, expect *domain.Vector) (store.PutResult, error) {
	res, err := t.DB.PutUser(ctx, u, expect)
	t.after(itemKey{domain.EntityUser, u.ID}, u.Ver)
	return res, err
}

func (t *tracked) PutUsers(ctx context.Context, puts []store.UserPut) ([]store.PutResult, error) {
	res, err := t.DB.PutUsers(ctx, puts)
	for _, put := range puts {
		t.after(itemKey{domain.EntityUser, put.User.ID}, put.User.Ver)
	}
	return res, err
}

func (t *tracked) PurgeTombstones(ctx context.Context, e domain.Entity, ts []store.Tombstone, before time.Time) ([]int64, error) {
	out, err := t.DB.PurgeTombstones(ctx, e, ts, before)
	for _, x := range ts {
		k := itemKey{e, x.ID}
		if _, ok := t.w.loadVer(t.role, k); !ok {
			t.w.held[t.role][k] = 0
			t.w.purged[k] = true
		}
	}
	return out, err
}

func (w *world) violate(kind, format string, a ...any) {
	w.viols = append(w.viols, Violation{Kind: kind, Detail: fmt.Sprintf(format, a...)})
}
