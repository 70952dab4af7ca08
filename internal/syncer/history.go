package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/store"
)

// Restore detection, database by database (docs/merge.md, "Databases that
// go back in time").
//
// Before sync copies anything read from a database into the other, it adds
// a mark to the source's history (store.Mark: a number and 128 random bits)
// and records it in the other database as the latest mark seen. The rows it
// copies were read before the mark was committed, so any backup that holds
// the mark holds them. A database restored from an older backup, or
// rebuilt, lacks the mark the other recorded, whatever it has written since
// (its marks' numbers may be handed out again, their tokens never): one
// primary-key lookup tells. The check runs before every such copy (group
// committed: one mark serves every copy that read before it), at process
// start and every minute.
//
// Once a database is known to have gone back in time, its rows never
// dominate by vector (they are merged field by field with the other's),
// until a repair run of every entity, started after the regression was
// found, has completed: it compared every row.

// errDistrusted makes a merge read and decide again: the source database
// was found to have gone back in time after the merge decided to trust it.
var errDistrusted = fmt.Errorf("%w: a database was found to have gone back in time", store.ErrChanged)

// CheckEvery is how often the handler checks both databases' histories.
const CheckEvery = time.Minute

// history watches one database's history as recorded in the other.
type history struct {
	own, other store.DB
	bit        regression
	found      func(ctx context.Context, db store.Role, at time.Time) // a regression newly recorded
	now        func() time.Time                                       // the engine's clock: repair runs are compared with it

	mu        sync.Mutex
	next      *flight // the mark that callers are waiting for, not started yet
	busy      bool    // a mark is being added and recorded
	regressed bool    // as last read: the other database says own went back in time
}

// flight is one mark added to own's history and recorded in the other.
type flight struct {
	done      chan struct{}
	regressed bool
	err       error
}

func newHistory(own, other store.DB, bit regression, found func(context.Context, store.Role, time.Time), now func() time.Time) *history {
	return &history{own: own, other: other, bit: bit, found: found, now: now}
}

// distrusted reports whether own is known to have gone back in time, as
// last read.
func (h *history) distrusted() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.regressed
}

func (h *history) set(regressed bool) {
	h.mu.Lock()
	h.regressed = regressed
	h.mu.Unlock()
}

// vouch returns once a mark of own's history added after the call began is
// recorded in the other database, and whether own is known to have gone
// back in time. Callers that come while a mark is being added wait for the
// next one: the one in flight may have been added before they read.
func (h *history) vouch(ctx context.Context) (bool, error) {
	h.mu.Lock()
	if h.next == nil {
		h.next = &flight{done: make(chan struct{})}
	}
	f := h.next
	if !h.busy {
		h.busy = true
		go h.fly()
	}
	h.mu.Unlock()
	select {
	case <-f.done:
		return f.regressed, f.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// fly adds and records marks while callers wait for one.
func (h *history) fly() {
	for {
		h.mu.Lock()
		f := h.next
		h.next = nil
		if f == nil {
			h.busy = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		f.regressed, f.err = h.mark(ctx)
		cancel()
		if f.err == nil {
			h.set(f.regressed)
		}
		close(f.done)
	}
}

// mark adds a mark to own and records it in the other database.
func (h *history) mark(ctx context.Context) (bool, error) {
	m, err := h.own.AddMark(ctx)
	if err != nil {
		return false, fmt.Errorf("add a mark to the %s's history: %w", h.own.Role(), err)
	}
	return h.record(ctx, m)
}

// check looks up in own the latest mark the other database recorded, and
// records a regression if own lacks it.
func (h *history) check(ctx context.Context) (bool, error) {
	return h.record(ctx, store.Mark{})
}

// record compares own's history with the latest mark of it the other
// database holds, and records m (unless zero) as the latest. Several
// instances record at once: each write is a compare-and-set, read again
// when it loses.
func (h *history) record(ctx context.Context, m store.Mark) (bool, error) {
	for range casAttempts {
		p, err := h.other.Peer(ctx, h.own.Role())
		if err != nil {
			return false, fmt.Errorf("read the %s's record of the %s: %w", h.other.Role(), h.own.Role(), err)
		}
		has := true
		if !p.Seen.IsZero() {
			if has, err = h.own.HasMark(ctx, p.Seen); err != nil {
				return false, fmt.Errorf("look up a mark in the %s: %w", h.own.Role(), err)
			}
		}
		next := p
		switch {
		case !has:
			// own lacks a mark whose rows the other database holds.
			next.RegressedAt = h.now()
			if !m.IsZero() {
				next.Seen = m
			}
		case m.IsZero() || p.Seen.N > m.N:
			h.set(p.Regressed())
			return p.Regressed(), nil // nothing lost; a later mark is recorded already
		default:
			next.Seen = m
		}
		if p.Regressed() {
			next.RegressedAt = p.RegressedAt // the first finding stands until repaired
		}
		ok, err := h.other.SetPeer(ctx, h.own.Role(), p, next)
		if err != nil {
			return false, fmt.Errorf("record a mark of the %s in the %s: %w", h.own.Role(), h.other.Role(), err)
		}
		if !ok {
			continue // another instance recorded meanwhile
		}
		h.set(next.Regressed())
		if !p.Regressed() && next.Regressed() {
			h.found(ctx, h.own.Role(), next.RegressedAt)
		}
		return next.Regressed(), nil
	}
	return false, fmt.Errorf("record a mark of the %s: %w", h.own.Role(), errBusyPeer)
}

var errBusyPeer = errors.New("its record in the other database kept changing")

// flag records that own went back in time, found by a row (the second
// line of detection): its rows stop dominating until a repair. It returns
// since when the regression is recorded, and whether it was not before.
func (h *history) flag(ctx context.Context) (time.Time, bool, error) {
	for range casAttempts {
		p, err := h.other.Peer(ctx, h.own.Role())
		if err != nil {
			return time.Time{}, false, err
		}
		if p.Regressed() {
			h.set(true)
			return p.RegressedAt, false, nil
		}
		next := p
		next.RegressedAt = h.now()
		ok, err := h.other.SetPeer(ctx, h.own.Role(), p, next)
		if err != nil {
			return time.Time{}, false, err
		}
		if ok {
			h.set(true)
			return next.RegressedAt, true, nil
		}
	}
	return time.Time{}, false, errBusyPeer
}

// clear ends a regression found at `at`, once repaired: the record of
// own's history then names a mark own holds (the one recorded may be one
// the restore took away).
func (h *history) clear(ctx context.Context, at time.Time) (bool, error) {
	m, err := h.own.AddMark(ctx)
	if err != nil {
		return false, err
	}
	p, err := h.other.Peer(ctx, h.own.Role())
	if err != nil || !p.RegressedAt.Equal(at) {
		return false, err
	}
	ok, err := h.other.SetPeer(ctx, h.own.Role(), p, store.Peer{Seen: m})
	if ok {
		h.set(false)
	}
	return ok, err
}

// distrust returns the databases known to have gone back in time.
func (e *Engine) distrust() regression {
	var r regression
	for _, h := range e.hist {
		if h.distrusted() {
			r |= h.bit
		}
	}
	return r
}

// vouch records marks of the histories of the databases in srcs before
// sync copies their rows, and returns errDistrusted if one of them is
// found to have gone back in time though the caller decided trusting it
// (known, per distrust()).
func (e *Engine) vouch(ctx context.Context, known regression, srcs regression) error {
	for _, h := range e.hist {
		if srcs&h.bit == 0 {
			continue
		}
		reg, err := h.vouch(ctx)
		if err != nil {
			return err
		}
		if reg && known&h.bit == 0 {
			return errDistrusted
		}
	}
	return nil
}

// regressionFound logs a regression newly found and starts the repair runs.
func (e *Engine) regressionFound(ctx context.Context, db store.Role, at time.Time) {
	event.Log(ctx, e.o.Logger, slog.LevelError, event.DatabaseRegressed,
		"a database went back in time (restored or rebuilt): it lacks a point of its history the other database had seen; "+
			"its rows are merged field by field until a repair run has compared every row",
		"database", string(db))
	e.repairAll(ctx, at)
}

// repairAll starts a repair run of each entity, unless one was started
// since the regression found at `since`.
func (e *Engine) repairAll(ctx context.Context, since time.Time) {
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, ent := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		e.repair(c, ent, since)
	}
}

// CheckDatabases checks each database's history against the latest mark
// of it the other holds (a few primary-key reads per database: no table
// is scanned), records and alerts a regression found, and ends one whose
// repair runs have completed. It fails only when a database does not
// answer.
func (e *Engine) CheckDatabases(ctx context.Context) error {
	for _, h := range e.hist {
		if _, err := h.check(ctx); err != nil {
			return err
		}
		p, err := h.other.Peer(ctx, h.own.Role())
		if err != nil {
			return err
		}
		if p.Regressed() {
			if err := e.endRepair(ctx, h, p.RegressedAt); err != nil {
				return err
			}
		}
	}
	return nil
}

// endRepair clears a regression found at `at` once a repair run of each
// entity created after it has completed, and logs what they did; it starts
// the repair runs again when none is under way (an instance recycled
// before starting them).
func (e *Engine) endRepair(ctx context.Context, h *history, at time.Time) error {
	runs, err := e.rec.ListRuns(ctx, 50)
	if err != nil {
		return err
	}
	done := map[domain.Entity]RunStatus{}
	under := map[domain.Entity]bool{}
	for _, r := range runs {
		if r.Trigger != TriggerRepair || r.CreatedTime.Before(at) {
			continue
		}
		st, err := e.Status(ctx, r.ID)
		if err != nil {
			return err
		}
		switch st.RuntimeStatus {
		case RunCompleted:
			if _, ok := done[r.Entity]; !ok {
				done[r.Entity] = st
			}
		case RunPending, RunRunning:
			under[r.Entity] = true
		}
	}
	ents := []domain.Entity{domain.EntityProduct, domain.EntityUser}
	missing := false
	for _, ent := range ents {
		if _, ok := done[ent]; !ok {
			missing = true
			if !under[ent] {
				e.repair(ctx, ent, at)
			}
		}
	}
	if missing {
		return nil
	}
	ok, err := h.clear(ctx, at)
	if err != nil || !ok {
		return err
	}
	args := []any{"database", string(h.own.Role()), "regressedAt", domain.FormatTime(at)}
	for _, ent := range ents {
		st := done[ent]
		args = append(args, string(ent)+"Run", st.InstanceID, string(ent)+"Counts", st.CustomStatus.Counts)
	}
	event.Log(ctx, e.o.Logger, slog.LevelWarn, event.DatabaseRepaired,
		"a database that went back in time is repaired: every row was compared with the other database's", args...)
	return nil
}

// WatchDatabases runs CheckDatabases every `every` until ctx ends (sooner,
// every 10 s, while it fails, logged once per run of failures).
func (e *Engine) WatchDatabases(ctx context.Context, every time.Duration) {
	failing := false
	for {
		c, cancel := context.WithTimeout(ctx, every)
		err := e.CheckDatabases(c)
		cancel()
		wait := every
		if err != nil {
			if !failing { // once per outage: the breaker's events say the rest
				e.o.Logger.Warn("could not check the databases' histories; trying every 10 s", "err", err)
			}
			wait = min(every, 10*time.Second)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// TriggerRepair is the trigger of the run sync starts when a database went
// back in time: the rows and writes it lost have no outbox entry on the
// other side (they were acknowledged long ago), so only a run over every id
// brings them back before something else fails. It runs in diff mode: it
// compares every range and syncs only the items that differ.
const TriggerRepair = "repair"

// repair starts a repair run of the entity unless one was started since
// `since` (the regression's finding: a run started before it may have
// compared rows before the database went back in time) and has not failed. Instances finding
// one regression record it once (compare and set), so one set starts.
func (e *Engine) repair(ctx context.Context, ent domain.Entity, since time.Time) {
	runs, err := e.rec.ListRuns(ctx, 20)
	if err != nil {
		e.o.Logger.Error("could not start a repair run", "entity", ent, "err", err)
		return
	}
	for _, r := range runs {
		if r.Trigger == TriggerRepair && r.Entity == ent && !r.CreatedTime.Before(since) && r.Status != RunFailed {
			return // a failed one is followed by another
		}
	}
	st, err := e.Start(ctx, StartRequest{Name: "RepairAfterRegression", Trigger: TriggerRepair, Entity: ent, Mode: ModeDiff})
	if err != nil {
		e.o.Logger.Error("could not start a repair run", "entity", ent, "err", err)
		return
	}
	e.o.Logger.Warn("a database went back in time: a full run brings back what it lost", "entity", ent, "runId", st.InstanceID)
}
