package syncer

import (
	"context"
	"time"

	"dualsync/internal/domain"
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
