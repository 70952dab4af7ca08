package syncer

import (
	"context"
	"fmt"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/ids"
	"dualsync/internal/store"
)

// TriggerRepair is the trigger of the run sync starts when a database went
// back in time: the rows and writes it lost have no outbox entry on the
// other side (they were acknowledged long ago), so only a run over every id
// brings them back before something else fails. It runs in diff mode: it
// compares every range and syncs only the items that differ.
const TriggerRepair = "repair"

// repairQuiet is how long after a repair run of an entity no other starts:
// instances starting together, or items of one restore, start one.
const repairQuiet = 10 * time.Minute

// CheckDatabases compares the two databases as wholes: a database whose
// highest id of its own parity, or highest entry of its own in any row's
// version vector, is behind what the other database holds went back in time
// (a restore, a rebuild). For each entity where one did, it logs the
// regression and starts a repair run. It fails only when a database does
// not answer; the handler calls it at start-up until it succeeds.
func (e *Engine) CheckDatabases(ctx context.Context) error {
	for _, ent := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		var reg regression
		for _, pair := range []struct {
			own, other store.DB
			bit        regression
		}{{e.primary, e.fallback, regPrimary}, {e.fallback, e.primary, regFallback}} {
			behind, err := behind(ctx, pair.own, pair.other, ent)
			if err != nil {
				return err
			}
			if behind {
				reg |= pair.bit
			}
		}
		if reg != 0 {
			e.logRegression(ctx, Message{Entity: ent}, 0, reg)
		}
	}
	return nil
}

// behind reports whether own holds less of its own history than other has
// seen of it.
func behind(ctx context.Context, own, other store.DB, ent domain.Entity) (bool, error) {
	parity := ids.Parity(own.Role())
	var tops [2]int64
	for i, db := range []store.DB{own, other} {
		top, err := db.MaxID(ctx, ent, parity)
		if err != nil {
			return false, fmt.Errorf("compare the databases: highest %s id in the %s: %w", ent, db.Role(), err)
		}
		tops[i] = top
	}
	if tops[0] < tops[1] {
		return true, nil
	}
	for i, db := range []store.DB{own, other} {
		top, err := db.MaxEntry(ctx, ent, own.Role())
		if err != nil {
			return false, fmt.Errorf("compare the databases: highest %s entry of %ss in the %s: %w", own.Role(), ent, db.Role(), err)
		}
		tops[i] = top
	}
	return tops[0] < tops[1], nil
}

// WatchDatabases runs CheckDatabases until it succeeds or ctx ends.
func (e *Engine) WatchDatabases(ctx context.Context, every time.Duration) {
	for {
		c, cancel := context.WithTimeout(ctx, every)
		err := e.CheckDatabases(c)
		cancel()
		if err == nil {
			return
		}
		e.o.Logger.Warn("could not compare the databases yet", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// repair starts a full run of the entity unless one started within
// repairQuiet.
func (e *Engine) repair(ctx context.Context, ent domain.Entity) {
	runs, err := e.rec.ListRuns(ctx, 20)
	if err != nil {
		e.o.Logger.Error("could not start a repair run", "entity", ent, "err", err)
		return
	}
	for _, r := range runs {
		if r.Trigger == TriggerRepair && r.Entity == ent && e.now().Sub(r.CreatedTime) < repairQuiet {
			return
		}
	}
	st, err := e.Start(ctx, StartRequest{Name: "RepairAfterRegression", Trigger: TriggerRepair, Entity: ent, Mode: ModeDiff})
	if err != nil {
		e.o.Logger.Error("could not start a repair run", "entity", ent, "err", err)
		return
	}
	e.o.Logger.Warn("a database went back in time: a full run brings back what it lost", "entity", ent, "runId", st.InstanceID)
}
