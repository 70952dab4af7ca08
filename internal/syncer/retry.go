package syncer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

// Retrying a run's failed items (POST /api/product-sync/{run}/retry-failed):
// a finished run's failed items are sent again as messages of a new retry
// round, and each one's new outcome replaces its failed one with exact
// counts (internal/table/retry.go). The run is Running until every item of
// the round has its new outcome, then Completed again with the new counts.

// RetryStarted is the answer to a retry request.
type RetryStarted struct {
	ID     string    `json:"id"`
	Round  int       `json:"round"`
	Items  int64     `json:"items"`  // item messages sent
	Resent bool      `json:"resent"` // a round under way was sent again, not a new one started
	Status RunStatus `json:"status"`
}

// RetryFailed sends the failed items of run id again. A Completed run with
// failed items starts a new round. A run whose round is under way gets the
// round's items that have no new outcome yet sent again (a send that
// failed half-way, a lost message): duplicates change nothing. Conflict if
// the run is still running its own items, failed, or has no failed item.
func (e *Engine) RetryFailed(ctx context.Context, id string) (RetryStarted, error) {
	if !ValidRunID(id) {
		return RetryStarted{}, domain.Errorf(domain.KindNotFound, "no sync run %q", id)
	}
	if isRealtime(id) {
		return RetryStarted{}, domain.Errorf(domain.KindInvalid,
			"%s holds real-time outcomes, not a run: an item's next write syncs it again (or start a run)", id)
	}
	run, err := e.rec.GetRun(ctx, id)
	if err != nil {
		return RetryStarted{}, err
	}
	st, err := e.status(ctx, run, false)
	if err != nil {
		return RetryStarted{}, err
	}
	round, resend := run.RetryRound+1, false
	switch {
	case st.RuntimeStatus == RunFailed:
		return RetryStarted{}, domain.Errorf(domain.KindConflict, "the run failed (%s): start a new run", st.CustomStatus.Reason)
	case !st.Final() && run.RetryRound > 0 && st.CustomStatus.RetryPending > 0:
		round, resend = run.RetryRound, true
	case !st.Final():
		return RetryStarted{}, domain.Errorf(domain.KindConflict, "the run is still running: retry its failed items once it has completed")
	case st.CustomStatus.Counts[StatusFailed] == 0:
		return RetryStarted{}, domain.Errorf(domain.KindConflict, "the run has no failed items")
	}
	ids, err := e.failedBefore(ctx, run, round)
	if err != nil {
		return RetryStarted{}, err
	}
	if !resend {
		if run, err = e.rec.StartRetry(ctx, run.ID, round, int64(len(ids)), e.now()); err != nil {
			return RetryStarted{}, err
		}
	}
	// The round is recorded before its messages go out, so the run cannot
	// complete before their outcomes are in; a send that fails leaves the
	// round pending, and the next request sends its items again.
	err = parallel(ctx, e.o.SendWorkers, ids, func(ctx context.Context, item int64) error {
		return e.items.Send(ctx, Message{Entity: run.Entity, ID: item, Run: run.ID, Retry: round})
	})
	if err != nil {
		return RetryStarted{}, fmt.Errorf("send the failed items of run %s again: %w", run.ID, err)
	}
	e.o.Logger.Info("retrying a run's failed items", "run", run.ID, "round", round, "items", len(ids), "resent", resend)
	if st, err = e.status(ctx, run, false); err != nil {
		return RetryStarted{}, err
	}
	return RetryStarted{ID: run.ID, Round: round, Items: int64(len(ids)), Resent: resend, Status: st}, nil
}

// failedBefore lists the run's items that are failed with an outcome of a
// round before round.
func (e *Engine) failedBefore(ctx context.Context, run table.Run, round int) ([]int64, error) {
	var ids []int64
	for token := ""; ; {
		rs, next, err := e.rec.Results(ctx, run.ID, StatusFailed, 1000, token)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.Status == StatusFailed && r.Retry < round {
				ids = append(ids, r.ID)
			}
		}
		if next == "" {
			return ids, nil
		}
		token = next
	}
}

// giveUpReason is a failed outcome's reason: how many attempts of its
// round failed, and the last one's error.
func giveUpReason(n int, last string, retry int, hist []table.Attempt) string {
	k := attemptsOf(n, retry, hist)
	s := "gave up after " + strconv.Itoa(k) + " attempt"
	if k != 1 {
		s += "s"
	}
	if retry > 0 {
		s += " in retry round " + strconv.Itoa(retry)
	}
	return s + ": " + last
}

// attemptsOf counts the failed attempts of round retry: the history keeps
// the newest ones, and n counts them all when every kept one is of the
// run's own round.
func attemptsOf(n, retry int, hist []table.Attempt) int {
	k := 0
	for _, a := range hist {
		if a.Retry == retry {
			k++
		}
	}
	if retry == 0 && k == len(hist) {
		return n
	}
	return k
}

// ItemHistory is one item's recorded outcome in a run or a day's real-time
// outcomes, and its failed attempts.
type ItemHistory struct {
	Entity   domain.Entity `json:"entity"`
	ID       int64         `json:"id"`
	Outcome  *ResultItem   `json:"outcome"`  // null while it has none
	Attempts int           `json:"attempts"` // failed attempts, all rounds
	History  []AttemptItem `json:"history"`  // the newest failed attempts, oldest first
}

// AttemptItem is one failed attempt.
type AttemptItem struct {
	At     string `json:"at"`
	Reason string `json:"reason"`
	Retry  int    `json:"retry,omitempty"`
}

// Item returns item (ent, id)'s outcome and attempt history in partition (a
// run id or realtime-YYYYMMDD); NotFound if there is no such run.
func (e *Engine) Item(ctx context.Context, partition string, ent domain.Entity, id int64) (ItemHistory, error) {
	if !ValidRunID(partition) {
		return ItemHistory{}, domain.Errorf(domain.KindNotFound, "no sync run %q", partition)
	}
	if !ent.Valid() {
		return ItemHistory{}, &domain.Error{Kind: domain.KindInvalid, Message: "invalid entity",
			Fields: map[string]string{"entity": "must be product or user"}}
	}
	if id <= 0 {
		return ItemHistory{}, &domain.Error{Kind: domain.KindInvalid, Message: "invalid id",
			Fields: map[string]string{"id": "must be a positive integer"}}
	}
	if !isRealtime(partition) {
		if _, err := e.rec.GetRun(ctx, partition); err != nil {
			return ItemHistory{}, err
		}
	}
	h := ItemHistory{Entity: ent, ID: id, History: []AttemptItem{}}
	r, ok, err := e.rec.Item(ctx, partition, ent, id)
	if err != nil {
		return ItemHistory{}, err
	}
	if ok {
		it := resultItem(r)
		h.Outcome = &it
	}
	n, hist, err := e.rec.Attempts(ctx, partition, ent, id)
	if err != nil {
		return ItemHistory{}, err
	}
	h.Attempts = n
	for _, a := range hist {
		h.History = append(h.History, AttemptItem{At: domain.FormatTime(a.At), Reason: a.Reason, Retry: a.Retry})
	}
	return h, nil
}

// RunQuery selects runs for the list: at most Limit, newest first, with
// the runtime status Status, of Entity, created in [From, To) (each if set).
type RunQuery struct {
	Limit    int
	Status   string
	Entity   domain.Entity
	From, To time.Time
}

// RunStatuses are the runtime statuses a list can be filtered by.
var RunStatuses = []string{RunPending, RunRunning, RunCompleted, RunFailed}

// maxStatusScan bounds the runs read to find those of one status: a run's
// stored status may be behind its real one, so the filter applies after
// each run's status is read.
const maxStatusScan = 500

// FindRuns lists runs as q asks.
func (e *Engine) FindRuns(ctx context.Context, q RunQuery) ([]RunStatus, error) {
	if q.Status != "" && !slices.Contains(RunStatuses, q.Status) {
		return nil, &domain.Error{Kind: domain.KindInvalid, Message: "invalid status filter",
			Fields: map[string]string{"status": "must be one of Pending, Running, Completed, Failed"}}
	}
	if q.Entity != "" && !q.Entity.Valid() {
		return nil, &domain.Error{Kind: domain.KindInvalid, Message: "invalid entity filter",
			Fields: map[string]string{"entity": "must be product or user"}}
	}
	f := table.RunFilter{Entity: q.Entity}
	// Run ids count down from runIDBase in ms: a later time is a smaller key.
	if !q.To.IsZero() {
		f.MinKey = fmt.Sprintf("%013d", runIDBase-q.To.UnixMilli()+1)
	}
	if !q.From.IsZero() {
		f.MaxKey = fmt.Sprintf("%013d", runIDBase-q.From.UnixMilli()+1)
	}
	scan := q.Limit
	if q.Status != "" {
		scan = maxStatusScan
	}
	runs, err := e.rec.ListRunsWhere(ctx, f, scan)
	if err != nil {
		return nil, err
	}
	if q.Status == "" {
		return e.statuses(ctx, runs)
	}
	out := []RunStatus{}
	for chunk := range slices.Chunk(runs, max(q.Limit, listWorkers)) {
		sts, err := e.statuses(ctx, chunk)
		if err != nil {
			return nil, err
		}
		for _, st := range sts {
			if st.RuntimeStatus == q.Status && len(out) < q.Limit {
				out = append(out, st)
			}
		}
		if len(out) >= q.Limit {
			break
		}
	}
	return out, nil
}
