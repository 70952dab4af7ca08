package explore

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
	"dualsync/internal/syncer"
)

// Violation is one broken guarantee.
type Violation struct {
	Kind   string
	Detail string
}

func (v Violation) String() string { return v.Kind + ": " + v.Detail }

// poison is a message moved to the poison queue after maxDequeue failures.
type poison struct{ body any }

// deliver hands message m to instance in, as the Functions host does; it
// removes m when the handler succeeds (unless the deletion is lost, so the
// message comes back) and moves it to the poison queue after maxDequeue
// failed deliveries.
func (w *world) deliver(m *message, in *instance, ackLost bool) string {
	m.dequeue++
	d := syncer.Delivery{MessageID: m.id, DequeueCount: m.dequeue}
	var err error
	item := func(b syncer.Message) {
		// Only the deliveries before the item's outcome is recorded count:
		// a later duplicate's work is not the run's outcome.
		if b.Run != "" && len(b.IDs) == 0 && !w.rec.hasResult(b.Run, itemKey{b.Entity, b.ID}) {
			w.cur = &runItem{b.Run, itemKey{b.Entity, b.ID}}
		}
	}
	switch b := m.body.(type) {
	case syncer.Message:
		item(b)
		err = in.eng.SyncDelivered(w.ctx, b, d)
	case syncer.PlanMessage:
		err = in.eng.Plan(w.ctx, b, d)
	case poison:
		switch pb := b.body.(type) {
		case syncer.Message:
			item(pb)
			err = in.eng.ItemPoisoned(w.ctx, pb)
		case syncer.PlanMessage:
			err = in.eng.PlanPoisoned(w.ctx, pb)
		}
	}
	w.cur = nil
	if err == nil {
		if !ackLost {
			w.q.remove(m)
		}
		return "ok"
	}
	if _, ok := m.body.(poison); !ok && m.dequeue >= maxDequeue {
		w.q.remove(m)
		w.q.mu.Lock()
		w.q.add(poison{m.body})
		w.q.mu.Unlock()
		return errText(err) + " (to the poison queue)"
	}
	return errText(err)
}

// heal ends every fault and outage.
func (w *world) heal() {
	for _, f := range []*fault{w.fault[store.RolePrimary], w.fault[store.RoleFallback], w.recF} {
		f.disarm()
		f.mu.Lock()
		f.down = false
		f.mu.Unlock()
	}
	w.q.mu.Lock()
	w.q.Down = false
	w.q.mu.Unlock()
}

// drain delivers every message, in random order to random instances,
// until the queue is empty; false if it does not empty.
func (w *world) drain(rng *rand.Rand) bool {
	for range 4000 {
		if w.q.len() == 0 {
			return true
		}
		w.now = w.now.Add(time.Duration(1+rng.IntN(50)) * time.Millisecond)
		m := w.q.pick(rng.IntN(1 << 16))
		w.deliver(m, w.insts[rng.IntN(len(w.insts))], false)
	}
	return false
}

func (w *world) outboxDepth() int {
	n := 0
	for _, r := range []store.Role{store.RolePrimary, store.RoleFallback} {
		w.inspect(r, func(db store.DB) {
			d, err := db.OutboxDepth(w.ctx)
			if err != nil {
				w.violate("engine_error", "outbox depth of the %s: %v", r, err)
			}
			n += int(d)
		})
	}
	return n
}

// contents reads every row of database r, tombstones included.
func (w *world) contents(r store.Role) map[itemKey]row {
	var (
		ps  []domain.Product
		us  []domain.User
		err error
	)
	w.inspect(r, func(db store.DB) {
		if ps, err = db.ProductsInRange(w.ctx, 0, math.MaxInt64); err == nil {
			us, err = db.UsersInRange(w.ctx, 0, math.MaxInt64)
		}
	})
	if err != nil {
		w.violate("engine_error", "reading the %s: %v", r, err)
	}
	return rows(ps, us)
}

// quiesce heals every fault, publishes what instances hold, relays and
// delivers until nothing moves, then runs a final run of each entity and
// lets repairs finish.
func (w *world) quiesce(rng *rand.Rand) bool {
	w.heal()
	for _, in := range w.insts {
		w.flush(in)
	}
	settle := func() bool {
		for range 6 {
			w.now = w.now.Add(3 * time.Minute) // past ResendAfter and the repair quiet time
			for _, in := range w.insts {
				_ = in.eng.CheckDatabases(w.ctx)
			}
			_ = w.insts[0].eng.Relay(w.ctx)
			if !w.drain(rng) {
				w.violate("no_quiescence", "the queue never emptied (%d messages left)", w.q.len())
				return false
			}
			if w.q.len() == 0 && w.outboxDepth() == 0 {
				return true
			}
		}
		return true
	}
	if !settle() {
		return false
	}
	in := w.insts[rng.IntN(len(w.insts))]
	for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		mode := syncer.ModeDiff
		if rng.IntN(2) == 0 {
			mode = syncer.ModeFull
		}
		if _, err := in.eng.Start(w.ctx, syncer.StartRequest{Trigger: "http", Entity: e, Mode: mode}); err != nil {
			w.violate("engine_error", "final %s run: %v", e, err)
		}
	}
	if !settle() {
		return false
	}
	// Every run has ended: a regression's repair runs too, so the checks
	// end it.
	for _, in := range w.insts {
		_ = in.eng.CheckDatabases(w.ctx)
	}
	return true
}

// check checks the quiesced world against README's guarantees.
func (w *world) check() {
	if w.restores == 0 && strings.Contains(w.logs.String(), `"event":"database_regressed"`) {
		w.violate("false_regression", "database_regressed logged though no database was restored or rebuilt")
	}
	if n := w.outboxDepth(); n > 0 {
		w.violate("outbox_not_drained", "%d outbox entries left after quiescing", n)
	}
	for _, of := range []store.Role{store.RolePrimary, store.RoleFallback} {
		var (
			peer store.Peer
			err  error
		)
		w.inspect(other(of), func(db store.DB) { peer, err = db.Peer(w.ctx, of) })
		if err != nil {
			w.violate("engine_error", "reading the %s's record of the %s: %v", other(of), of, err)
		}
		if peer.Regressed() {
			w.violate("regression_not_repaired", "the %s is still recorded as gone back in time (since %s) after its repair runs ended",
				of, domain.FormatTime(peer.RegressedAt))
		}
	}
	prows, frows := w.contents(store.RolePrimary), w.contents(store.RoleFallback)
	for _, k := range union(prows, frows) {
		p, pok := prows[k]
		f, fok := frows[k]
		if !pok || !fok || p.text != f.text {
			w.violate("databases_differ", "%s %d: primary %s, fallback %s", k.e, k.id, orAbsent(p.text, pok), orAbsent(f.text, fok))
		}
	}
	w.checkWrites(prows)
	w.checkRuns()
}

func orAbsent(s string, ok bool) string {
	if !ok {
		return "absent"
	}
	return s
}

// row is a final row: its fields by name with their change times, and a
// text of every column but the local jump.
type row struct {
	deleted bool
	fields  map[string]obs
	text    string
}

func ms(t time.Time) string { return t.UTC().Format("15:04:05.000") }

func rows(ps []domain.Product, us []domain.User) map[itemKey]row {
	out := map[itemKey]row{}
	for _, p := range ps {
		del := ""
		if p.DeletedAt != nil {
			del = ms(*p.DeletedAt)
		}
		out[itemKey{domain.EntityProduct, p.ID}] = row{
			deleted: p.Deleted(),
			fields: map[string]obs{"name": {"name", p.Name, p.NameAt}, "description": {"description", p.Description, p.DescriptionAt},
				"price": {"price", p.Price.String(), p.PriceAt}},
			text: fmt.Sprintf("{name %q@%s desc %q@%s price %s@%s created %s updated %s deleted %s ver %d/%d}",
				p.Name, ms(p.NameAt), p.Description, ms(p.DescriptionAt), p.Price, ms(p.PriceAt), ms(p.CreatedAt), ms(p.UpdatedAt), del, p.Ver.P, p.Ver.F),
		}
	}
	for _, u := range us {
		del := ""
		if u.DeletedAt != nil {
			del = ms(*u.DeletedAt)
		}
		out[itemKey{domain.EntityUser, u.ID}] = row{
			deleted: u.Deleted(),
			fields:  map[string]obs{"name": {"name", u.Name, u.NameAt}, "email": {"email", u.Email, u.EmailAt}},
			text: fmt.Sprintf("{name %q@%s email %q@%s created %s updated %s deleted %s ver %d/%d}",
				u.Name, ms(u.NameAt), u.Email, ms(u.EmailAt), ms(u.CreatedAt), ms(u.UpdatedAt), del, u.Ver.P, u.Ver.F),
		}
	}
	return out
}

func union(a, b map[itemKey]row) []itemKey {
	var ks []itemKey
	for k := range a {
		ks = append(ks, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			ks = append(ks, k)
		}
	}
	slices.SortFunc(ks, func(x, y itemKey) int {
		if x.e != y.e {
			return strings.Compare(string(x.e), string(y.e))
		}
		return int(x.id - y.id)
	})
	return ks
}

// checkWrites checks every item's final row against its acknowledged
// writes: each field holds the surviving acknowledged value changed last
// (equal times: the primary's), a surviving delete left a tombstone, no
// tombstone without a delete, no surviving row missing.
func (w *world) checkWrites(final map[itemKey]row) {
	byKey := map[itemKey][]*write{}
	var keys []itemKey
	for _, wr := range w.writes {
		if _, ok := byKey[wr.key]; !ok {
			keys = append(keys, wr.key)
		}
		byKey[wr.key] = append(byKey[wr.key], wr)
	}
	for _, k := range keys {
		var alive []*write
		anyDelete, aliveDelete := false, false
		for _, wr := range byKey[k] {
			anyDelete = anyDelete || wr.kind == "delete"
			if !wr.lost {
				alive = append(alive, wr)
				aliveDelete = aliveDelete || wr.kind == "delete"
			}
		}
		if len(alive) == 0 {
			continue
		}
		r, ok := final[k]
		if !ok {
			if !(aliveDelete && w.purged[k]) {
				w.violate("row_missing", "%s %d: acknowledged (w%d) but in neither database", k.e, k.id, alive[0].idx)
			}
			continue
		}
		if aliveDelete && !r.deleted {
			w.violate("delete_undone", "%s %d: deleted (acknowledged) but live at the end", k.e, k.id)
		}
		if !anyDelete && r.deleted {
			w.violate("phantom_delete", "%s %d: never deleted but a tombstone at the end", k.e, k.id)
		}
		best := map[string]*write{}
		bestObs := map[string]obs{}
		var fields []string
		for _, wr := range alive {
			for _, o := range wr.obs {
				b, ok := bestObs[o.field]
				if !ok {
					fields = append(fields, o.field)
				}
				if !ok || o.at.After(b.at) || o.at.Equal(b.at) && wr.side == store.RolePrimary {
					bestObs[o.field], best[o.field] = o, wr
				}
			}
		}
		for _, f := range fields {
			// A later-timed write supersedes, even one lost since (a later
			// restore may bring it back); the final value is some write's.
			want, got := bestObs[f], r.fields[f]
			superseded := got.at.After(want.at) && slices.ContainsFunc(byKey[k], func(wr *write) bool {
				return slices.Contains(wr.obs, got)
			})
			if !superseded && (got.value != want.value || !got.at.Equal(want.at)) {
				w.violate("lost_write", "%s %d: %s is %q@%s, want %q@%s (w%d, step %d, on the %s)",
					k.e, k.id, f, got.value, ms(got.at), want.value, ms(want.at), best[f].idx, best[f].step, best[f].side)
			}
		}
	}
}

// checkRuns checks that every run completed with exact counts, each item's
// outcome recorded once, and that no outcome hides what its delivery wrote.
func (w *world) checkRuns() {
	for _, id := range w.rec.runIDs() {
		st, err := w.insts[0].eng.Status(w.ctx, id)
		if err != nil {
			w.violate("run_status", "run %s: %v", shortRun(id), err)
			continue
		}
		if st.RuntimeStatus == syncer.RunFailed {
			continue // planning gave up during an outage: said so in its reason
		}
		if st.RuntimeStatus != syncer.RunCompleted {
			w.violate("run_incomplete", "run %s (%s, %s) is %s after quiescing: %d of %d", shortRun(id),
				st.CustomStatus.Trigger, st.CustomStatus.Mode, st.RuntimeStatus, st.CustomStatus.Done, st.CustomStatus.Total)
			continue
		}
		d := w.rec.detail(id)
		results, want, compared := d.results, d.want, d.compared
		cs := st.CustomStatus
		if cs.Done != cs.Total || int64(len(results))+compared != cs.Total || len(want) != len(results) {
			w.violate("run_counts", "run %s (%s %s): total %d, done %d, %d results + %d compared, %d items to record; counts %v",
				shortRun(id), cs.Mode, cs.Entity, cs.Total, cs.Done, len(results), compared, len(want), cs.Counts)
		}
		for _, x := range want {
			if _, ok := results[itemKey{cs.Entity, x}]; !ok {
				w.violate("run_counts", "run %s: item %d has no outcome", shortRun(id), x)
			}
		}
		for k, r := range results {
			wrote := w.wrote[runItem{id, k}]
			if len(wrote) == 0 {
				continue
			}
			if slices.Contains(wrote, syncer.StatusConflict) && r.Status != syncer.StatusConflict {
				w.violate("conflict_hidden", "run %s: %s %d merged a conflict but is recorded %s", shortRun(id), k.e, k.id, r.Status)
			} else if r.Status == syncer.StatusUnchanged {
				w.violate("write_recorded_unchanged", "run %s: %s %d was written (%v) but is recorded unchanged", shortRun(id), k.e, k.id, wrote)
			}
		}
	}
}
