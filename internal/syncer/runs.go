package syncer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/event"
	"dualsync/internal/store"
	"dualsync/internal/table"
)

// Run states, as Durable Functions names them (the original's clients know them).
const (
	RunPending   = "Pending"
	RunRunning   = "Running"
	RunCompleted = "Completed"
	RunFailed    = "Failed"
)

// OutputLimit caps the items listed in a completed run's output; the rest
// are paged through the results endpoint.
const OutputLimit = 1000

// StartRequest describes a run to start.
type StartRequest struct {
	Name    string        // orchestrator name echoed back, may be empty
	Trigger string        // "http" or "timer"
	Entity  domain.Entity // product (default) or user
	Input   string        // raw JSON body, echoed as the status' input
	Mode    string        // full (default), diff or verify (diff.go)
}

// RunStatus is a run's status in the shape of the original's Durable
// Functions instance status.
type RunStatus struct {
	Name            string       `json:"name"`
	InstanceID      string       `json:"instanceId"`
	RuntimeStatus   string       `json:"runtimeStatus"`
	Input           any          `json:"input"`
	CustomStatus    CustomStatus `json:"customStatus"`
	Output          []OutputItem `json:"output"` // null until Completed
	CreatedTime     string       `json:"createdTime"`
	LastUpdatedTime string       `json:"lastUpdatedTime"`
}

// CustomStatus is the progress of a run.
type CustomStatus struct {
	Entity  domain.Entity    `json:"entity"`
	Trigger string           `json:"trigger"`
	Planned bool             `json:"planned"` // every planner page is done, so Total is final
	Total   int64            `json:"total"`
	Done    int64            `json:"done"`
	Counts  map[string]int64 `json:"counts"`
	Mode    string           `json:"mode"`              // full, diff or verify
	Differs *int64           `json:"differs,omitempty"` // verify runs: items found differing
	// Compared counts the items a diff or verify run found unchanged in
	// bulk: in Counts and Done, without a result of their own to list.
	Compared int64 `json:"compared,omitempty"`
	// FinishedTime is when the run's own items were done, once a retry
	// round has moved lastUpdatedTime on; RetryStartedTime when the latest
	// retry round started. Absent before a retry.
	FinishedTime     string `json:"finishedTime,omitempty"`
	RetryStartedTime string `json:"retryStartedTime,omitempty"`
	Reason           string `json:"reason,omitempty"`
	// Waiting says why a run that has not moved for a while waits (stalled.go).
	Waiting         string `json:"waiting,omitempty"`
	OutputTruncated bool   `json:"outputTruncated,omitempty"`
	// Retrying counts items whose last attempt failed and that the queue
	// will try again (no outcome yet); read while the run is active and
	// has not moved for stalledAfter.
	Retrying int64 `json:"retrying,omitempty"`
	// RetryRound counts the retry-failed rounds started on the run;
	// RetryPending the items they sent whose new outcome is not in yet.
	RetryRound   int   `json:"retryRound,omitempty"`
	RetryPending int64 `json:"retryPending,omitempty"`
}

// OutputItem is one item's outcome in a completed run's output.
type OutputItem struct {
	Status string        `json:"status"`
	ID     int64         `json:"id"`
	Entity domain.Entity `json:"entity,omitempty"` // set for users; products stay as the original shows them
	Reason string        `json:"reason,omitempty"`
}

// Final reports whether the run will not change any more.
func (s RunStatus) Final() bool {
	return s.RuntimeStatus == RunCompleted || s.RuntimeStatus == RunFailed
}

// newRunID returns a run id whose lexical order is newest first (Table
// Storage lists RowKeys ascending) and that is unique without coordination.
func newRunID(now time.Time) string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return fmt.Sprintf("%013d%s", runIDBase-now.UnixMilli(), hex.EncodeToString(b[:]))
}

// runIDBase is what a run id's first 13 digits count down from, in ms.
const runIDBase = 9_999_999_999_999

// runIDPattern accepts run ids and real-time partitions; anything else is
// unknown (and would not be a valid Table Storage key anyway).
var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9-]{1,64}$`)

// ValidRunID reports whether id can name a run or a results partition.
func ValidRunID(id string) bool { return runIDPattern.MatchString(id) }

// Start creates a run and enqueues its first planner message; the fan-out
// happens in the queue, so Start answers at once whatever the catalogue size.
func (e *Engine) Start(ctx context.Context, req StartRequest) (RunStatus, error) {
	if req.Entity == "" {
		req.Entity = domain.EntityProduct
	}
	if !req.Entity.Valid() {
		return RunStatus{}, domain.Errorf(domain.KindInvalid, "entity must be product or user")
	}
	if req.Mode == "" {
		req.Mode = ModeFull
	}
	if !ValidMode(req.Mode) {
		return RunStatus{}, domain.Errorf(domain.KindInvalid, "mode must be full, diff or verify")
	}
	now := e.now()
	run := table.Run{
		ID: newRunID(now), Name: req.Name, Entity: req.Entity, Trigger: req.Trigger, Input: req.Input,
		Status: RunPending, CreatedTime: now, LastUpdatedTime: now, Mode: req.Mode,
	}
	if err := e.rec.CreateRun(ctx, run); err != nil {
		return RunStatus{}, err
	}
	if err := e.plans.Send(ctx, PlanMessage{Run: run.ID, Entity: run.Entity}); err != nil {
		// All or nothing for the caller: the error, and no run. A message
		// enqueued with its answer lost finds no run and is dropped. Should
		// the delete fail too, the run is marked failed; failing that, the
		// relay finds it Pending without a page and resumes it (stalled.go).
		if derr := e.undoStart(context.WithoutCancel(ctx), run.ID); derr != nil {
			e.o.Logger.Warn("could not remove a run whose start failed", "run", run.ID, "err", derr)
			run.Status, run.Reason, run.LastUpdatedTime = RunFailed, "could not enqueue the run's first planner message", e.now()
			if uerr := e.rec.UpdateRun(context.WithoutCancel(ctx), run); uerr != nil {
				e.o.Logger.Error("could not mark the run failed", "run", run.ID, "err", uerr)
			} else {
				e.runEnded(ctx, run, "sync run failed")
			}
		}
		return RunStatus{}, err
	}
	e.o.Logger.Info("sync run started", "run", run.ID, "entity", run.Entity, "trigger", run.Trigger, "mode", run.Mode)
	return e.statusOf(run, table.Progress{}, nil), nil
}

// undoStart deletes a run that was just created (its counters and entity).
func (e *Engine) undoStart(ctx context.Context, id string) error {
	run, err := e.rec.GetRun(ctx, id)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = e.rec.DeleteRun(ctx, id, run.Partitions)
	return err
}

// Nightly starts the nightly runs: products, then users.
func (e *Engine) Nightly(ctx context.Context) error {
	var errs []error
	for _, ent := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		if _, err := e.Start(ctx, StartRequest{Name: "NightlyProductSync", Trigger: NightlyTrigger, Entity: ent, Mode: e.o.NightlyMode}); err != nil {
			errs = append(errs, fmt.Errorf("start nightly %s sync: %w", ent, err))
		}
	}
	return errors.Join(errs...)
}

// Delivery is what the queue host says of the message being handled
// (invocation metadata Id and DequeueCount).
type Delivery struct {
	MessageID    string // the same on every redelivery of one message
	DequeueCount int
}

// Plan plans one page: it records the page's ids (at most PageSize, over the
// union of ids in both databases) before it enqueues any of them, enqueues
// exactly those, then chains the next page. The page record names the
// message that made it: a redelivery of that message goes on from the
// record (same ids, whatever the databases answer now), and any other
// message for the page (a duplicate chain message) stops, so a run has one
// chain of pages. Duplicate item messages record nothing twice.
func (e *Engine) Plan(ctx context.Context, pm PlanMessage, d Delivery) error {
	if pm.UpTo > 0 {
		return e.compareRange(ctx, pm, d)
	}
	run, err := e.rec.GetRun(ctx, pm.Run)
	if domain.IsKind(err, domain.KindNotFound) {
		e.o.Logger.Warn("dropping planner message of an unknown run", "run", pm.Run)
		return nil
	}
	if err != nil {
		return err
	}
	if run.Status == RunCompleted || run.Status == RunFailed {
		return nil
	}
	page, ok, err := e.rec.GetPlanPage(ctx, pm.Run, pm.After)
	if err != nil {
		return err
	}
	if !ok {
		if page, err = e.recordPage(ctx, &run, pm.After, d); err != nil {
			if domain.IsKind(err, domain.KindConflict) {
				e.o.Logger.Warn("dropping a duplicate planner message", "run", run.ID, "after", pm.After,
					"message", d.MessageID, "dequeueCount", d.DequeueCount, "err", err)
				return nil
			}
			return err
		}
	}
	// An owner-less page was recorded before pages had owners (or by a
	// caller without queue metadata): whoever finds it goes on with it.
	if page.Owner != d.MessageID && page.Owner != "" {
		e.o.Logger.Warn("dropping a duplicate planner message: another message owns the page",
			"run", run.ID, "after", pm.After, "message", d.MessageID, "dequeueCount", d.DequeueCount, "owner", page.Owner)
		return nil
	}
	if !page.Enqueued {
		if err := e.sendPage(ctx, run, page); err != nil {
			return err
		}
		page.Enqueued = true
		if err := e.rec.PutPlanPage(ctx, pm.Run, page); err != nil {
			return err
		}
		if run.Status == RunPending {
			run.Status, run.LastUpdatedTime = RunRunning, e.now()
			if err := e.rec.UpdateRun(ctx, run); err != nil {
				e.o.Logger.Warn("could not mark the run running", "run", run.ID, "err", err)
			}
		}
	}
	if page.Last || page.NextQueued {
		return nil
	}
	if err := e.plans.Send(ctx, PlanMessage{Run: pm.Run, Entity: run.Entity, After: page.Next}); err != nil {
		return err
	}
	page.NextQueued = true
	return e.rec.PutPlanPage(ctx, pm.Run, page)
}

// recordPage lists the page's ids and records them, owned by message d, and
// returns the page as recorded: another attempt of the same message may
// have recorded it first, and then its ids stand. Conflict if another
// message owns the page. It sets run's reason when one database could not be
// listed, so that the caller's later update of run keeps it.
func (e *Engine) recordPage(ctx context.Context, run *table.Run, after int64, d Delivery) (table.PlanPage, error) {
	ids, last, missing, err := e.planIDs(ctx, *run)(after)
	if err != nil {
		return table.PlanPage{}, err
	}
	if missing != "" {
		reason := fmt.Sprintf("the %s database was unavailable while planning: %ss only it holds were not in this run", missing, run.Entity)
		if run.Reason != reason { // once per run and database, not once per page
			event.Log(ctx, e.o.Logger, slog.LevelWarn, event.RunPlannedOneSide, "planning from one database",
				"runId", run.ID, "entity", run.Entity, "trigger", run.Trigger, "database", missing, "after", after)
		}
		run.Reason = reason
		if err := e.rec.UpdateRun(ctx, *run); err != nil {
			return table.PlanPage{}, err
		}
	}
	if ids == nil {
		ids = []int64{} // recorded as an empty list, not as "ids unknown"
	}
	page := table.PlanPage{After: after, Count: len(ids), IDs: ids, Next: after, Last: last, Owner: d.MessageID}
	if len(ids) > 0 {
		page.Next = ids[len(ids)-1]
	}
	if err := e.rec.PutPlanPage(ctx, run.ID, page); err != nil {
		return table.PlanPage{}, err
	}
	got, ok, err := e.rec.GetPlanPage(ctx, run.ID, after)
	if err != nil {
		return table.PlanPage{}, err
	}
	if !ok {
		return table.PlanPage{}, domain.Errorf(domain.KindUnavailable, "plan page after %d of run %s not found after recording it", after, run.ID)
	}
	return got, nil
}

// PlanPoisoned fails a run whose planner message exhausted its retries.
func (e *Engine) PlanPoisoned(ctx context.Context, pm PlanMessage) error {
	run, err := e.rec.GetRun(ctx, pm.Run)
	if domain.IsKind(err, domain.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	run.Status, run.LastUpdatedTime = RunFailed, e.now()
	run.Reason = fmt.Sprintf("planning the %ss after id %d failed after the queue's retries (a database or the queue was unavailable); start a new run", run.Entity, pm.After)
	if pm.UpTo > 0 {
		run.Reason = rangePoisonReason(run, pm)
	}
	if err := e.rec.UpdateRun(ctx, run); err != nil {
		return err
	}
	e.runEnded(ctx, run, "sync run failed")
	return nil
}

// union returns the next ids after `after` in either database, at most
// PageSize, and whether no ids remain beyond them. If one database is
// unavailable it plans from the other rather than fail the whole run: those
// items then fail (and say why), and missing names the side whose own ids
// could not be listed.
func (e *Engine) union(ctx context.Context, ent domain.Entity, after int64, size int) (ids []int64, last bool, missing store.Role, err error) {
	p, perr := e.primary.IDs(ctx, ent, after, size)
	f, ferr := e.fallback.IDs(ctx, ent, after, size)
	switch {
	case perr != nil && (ferr != nil || !domain.IsKind(perr, domain.KindUnavailable)):
		return nil, false, "", perr
	case ferr != nil && !domain.IsKind(ferr, domain.KindUnavailable):
		return nil, false, "", ferr
	case perr != nil:
		missing = store.RolePrimary
	case ferr != nil:
		missing = store.RoleFallback
	}
	ids = slices.Compact(slices.Sorted(slices.Values(append(p, f...))))
	last = len(p) < size && len(f) < size
	if len(ids) > size {
		ids, last = ids[:size], false
	}
	return ids, last, missing, nil
}

// sendItems enqueues one message per id with bounded concurrency (the queue
// API takes one message per request).
func (e *Engine) sendItems(ctx context.Context, run table.Run, ids []int64) error {
	return parallel(ctx, e.o.SendWorkers, ids, func(ctx context.Context, id int64) error {
		return e.items.Send(ctx, Message{Entity: run.Entity, ID: id, Run: run.ID})
	})
}

// Status returns a run's status; NotFound if there is no such run. The
// first call that finds a run complete caches its counts in the run.
func (e *Engine) Status(ctx context.Context, id string) (RunStatus, error) {
	if !ValidRunID(id) {
		return RunStatus{}, domain.Errorf(domain.KindNotFound, "no sync run %q", id)
	}
	run, err := e.rec.GetRun(ctx, id)
	if err != nil {
		return RunStatus{}, err
	}
	return e.status(ctx, run, true)
}

// status assembles a run's status, completing the run when its last item
// is in; withOutput adds the output of a completed run.
func (e *Engine) status(ctx context.Context, run table.Run, withOutput bool) (RunStatus, error) {
	var prog table.Progress
	if run.Status != RunCompleted && run.Status != RunFailed {
		var err error
		prog, err = e.rec.Progress(ctx, run.ID)
		if errors.Is(err, table.ErrNoCounters) {
			return e.damaged(ctx, run), nil
		}
		if err != nil {
			return RunStatus{}, err
		}
		total, planned := planTotal(run, prog)
		if planned && prog.Done >= total && prog.Retried >= run.RetryTotal {
			run.Status, run.Total, run.Counts, run.Compared = RunCompleted, total, prog.Counts, prog.Compared
			run.LastUpdatedTime = maxTime(run.CreatedTime, prog.LastUpdated)
			if err := e.rec.UpdateRun(ctx, run); err != nil {
				e.o.Logger.Warn("could not cache the completed run", "run", run.ID, "err", err)
			} else {
				e.runEnded(ctx, run, "sync run completed")
			}
		}
	}
	var out []OutputItem
	if run.Status == RunCompleted && withOutput {
		var err error
		if out, err = e.output(ctx, run); err != nil {
			return RunStatus{}, err
		}
	}
	st := e.statusOf(run, prog, out)
	if !st.Final() {
		st.CustomStatus.Waiting = e.waiting(run, prog, maxTime(run.LastUpdatedTime, prog.LastUpdated))
	}
	if !st.Final() && e.now().Sub(prog.LastUpdated) >= stalledAfter {
		// Best effort: a run that is waiting for an item's next attempt
		// says so, rather than sit at "11 / 12" with no sign why. Only
		// once nothing moved for a moment: a run that flows pays nothing
		// (status is polled often, and this costs a query per partition).
		n, err := e.rec.Retrying(ctx, run.ID)
		if err != nil {
			e.o.Logger.Warn("could not count the run's retrying items", "run", run.ID, "err", err)
		}
		st.CustomStatus.Retrying = n
	}
	return st, nil
}

// stalledAfter is how long a run's counters and plan stay unchanged
// before its status counts the items waiting for their next attempt.
const stalledAfter = time.Second

// output is a completed run's output: cached on the run once read, since
// it no longer changes (the first outcome of an item is the one that
// counts), so that a completed run's status is one point read instead of a
// query per partition.
func (e *Engine) output(ctx context.Context, run table.Run) ([]OutputItem, error) {
	var out []OutputItem
	if run.Output != "" && json.Unmarshal([]byte(run.Output), &out) == nil {
		return out, nil
	}
	rs, _, err := e.rec.Results(ctx, run.ID, "", OutputLimit, "")
	if err != nil {
		return nil, err
	}
	out = make([]OutputItem, 0, len(rs))
	for _, r := range rs {
		out = append(out, outputItem(r))
	}
	if b, err := json.Marshal(out); err == nil {
		run.Output = string(b)
		if err := e.rec.UpdateRun(ctx, run); err != nil {
			e.o.Logger.Warn("could not cache the run's output", "run", run.ID, "err", err)
		}
	}
	return out, nil
}

// chain follows the planner pages from id 0: the run's total is known once
// the chain reaches the last page.
func chain(pages []table.PlanPage) (total int64, planned bool) {
	byAfter := make(map[int64]table.PlanPage, len(pages))
	for _, p := range pages {
		byAfter[p.After] = p
	}
	for after := int64(0); ; {
		p, ok := byAfter[after]
		if !ok {
			return total, false
		}
		total += int64(p.Count)
		if p.Last {
			return total, true
		}
		if p.Next <= after { // cannot happen with ascending ids; never loop
			return total, false
		}
		after = p.Next
	}
}

func (e *Engine) statusOf(run table.Run, prog table.Progress, out []OutputItem) RunStatus {
	cs := CustomStatus{Entity: run.Entity, Trigger: run.Trigger, Reason: run.Reason, Counts: map[string]int64{}, RetryRound: run.RetryRound, Mode: modeOf(run)}
	for _, s := range Statuses {
		cs.Counts[s] = 0
	}
	if !run.FinishedTime.IsZero() {
		cs.FinishedTime = domain.FormatTime(run.FinishedTime)
	}
	if !run.RetryStartedTime.IsZero() {
		cs.RetryStartedTime = domain.FormatTime(run.RetryStartedTime)
	}
	status := run.Status
	switch status {
	case RunCompleted:
		cs.Planned, cs.Total = true, run.Total
		maps(cs.Counts, run.Counts)
		cs.Compared = run.Compared
		cs.OutputTruncated = out != nil && int64(len(out)) < run.Total-run.Compared
	case RunFailed:
		maps(cs.Counts, run.Counts)
	default:
		cs.Total, cs.Planned = planTotal(run, prog)
		maps(cs.Counts, prog.Counts)
		cs.Compared = prog.Compared
		cs.RetryPending = max(0, run.RetryTotal-prog.Retried)
		if status == RunPending && (len(prog.Pages) > 0 || prog.Done > 0) {
			status = RunRunning
		}
	}
	if run.Mode == ModeVerify {
		n := cs.Counts[StatusDiffers]
		cs.Counts[StatusDiffers], cs.Differs = n, &n
	} else {
		delete(cs.Counts, StatusDiffers)
	}
	for _, n := range cs.Counts {
		cs.Done += n
	}
	var input any = ""
	if run.Input != "" && json.Valid([]byte(run.Input)) {
		input = json.RawMessage(run.Input)
	}
	return RunStatus{
		Name: run.Name, InstanceID: run.ID, RuntimeStatus: status, Input: input,
		CustomStatus: cs, Output: out,
		CreatedTime:     domain.FormatTime(run.CreatedTime),
		LastUpdatedTime: domain.FormatTime(maxTime(run.LastUpdatedTime, prog.LastUpdated)),
	}
}

func maps(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] = v
	}
}

func outputItem(r table.Result) OutputItem {
	o := OutputItem{Status: r.Status, ID: r.ID, Reason: r.Reason}
	if r.Entity != domain.EntityProduct {
		o.Entity = r.Entity
	}
	return o
}

// damaged fails a run that lost its counter shards (created before shards
// came first, by a creation interrupted between the run entity and its
// shards): it can never complete, and its items were never planned, since
// planning starts only once the run exists.
func (e *Engine) damaged(ctx context.Context, run table.Run) RunStatus {
	run.Status, run.LastUpdatedTime = RunFailed, e.now()
	run.Reason = "the run's counters are missing (its creation was interrupted): nothing was synced; start a new run"
	e.o.Logger.Warn("marking a damaged run failed", "run", run.ID)
	if err := e.rec.UpdateRun(ctx, run); err != nil {
		e.o.Logger.Warn("could not mark the damaged run failed", "run", run.ID, "err", err)
	} else {
		e.runEnded(ctx, run, "sync run failed")
	}
	return e.statusOf(run, table.Progress{}, nil)
}

// listWorkers bounds the runs whose status a list reads at once.
const listWorkers = 4

// Runs lists the newest runs first, at most limit. A damaged run is listed
// as Failed with its reason, and one that vanished meanwhile is left out:
// one bad run never fails the list.
func (e *Engine) Runs(ctx context.Context, limit int) ([]RunStatus, error) {
	runs, err := e.rec.ListRuns(ctx, limit)
	if err != nil {
		return nil, err
	}
	return e.statuses(ctx, runs)
}

// statuses reads the status of each run, leaving out runs that vanished.
func (e *Engine) statuses(ctx context.Context, runs []table.Run) ([]RunStatus, error) {
	out := make([]RunStatus, len(runs))
	errs := make([]error, len(runs))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(listWorkers, len(runs)) {
		wg.Go(func() {
			for i := range work {
				// Lists stay small: a run's own status has its output.
				out[i], errs[i] = e.status(ctx, runs[i], false)
			}
		})
	}
	for i := range runs {
		work <- i
	}
	close(work)
	wg.Wait()
	kept := out[:0]
	for i, st := range out {
		switch {
		case errs[i] == nil:
			kept = append(kept, st)
		case domain.IsKind(errs[i], domain.KindNotFound):
			e.o.Logger.Warn("leaving a vanished run out of the list", "run", runs[i].ID, "err", errs[i])
		default:
			return nil, errs[i]
		}
	}
	return kept, nil
}

// ResultItem is one recorded outcome, as the results endpoint shows it.
type ResultItem struct {
	Entity  domain.Entity   `json:"entity"`
	ID      int64           `json:"id"`
	Status  string          `json:"status"`
	Reason  string          `json:"reason,omitempty"`
	Detail  json.RawMessage `json:"detail,omitempty"`  // for a conflict: both versions and the merged result
	Version string          `json:"version,omitempty"` // updatedAt of the winning row
	At      string          `json:"at"`
	// Attempts is how many attempts failed before a failed outcome was
	// recorded; Retry the retry round that recorded the outcome.
	Attempts int `json:"attempts,omitempty"`
	Retry    int `json:"retry,omitempty"`
}

// ResultsPage is one page of outcomes; Next is the continuation token of the
// following page, empty at the end.
type ResultsPage struct {
	Items []ResultItem `json:"items"`
	Next  string       `json:"continuation,omitempty"`
}

// Results pages through the outcomes recorded in a run or a real-time
// partition (realtime-YYYYMMDD), optionally of one status only.
func (e *Engine) Results(ctx context.Context, partition, status string, limit int, token string) (ResultsPage, error) {
	if !ValidRunID(partition) {
		return ResultsPage{}, domain.Errorf(domain.KindNotFound, "no sync run %q", partition)
	}
	if status != "" && !slices.Contains(Statuses, status) && status != StatusDiffers && status != StatusWaiting {
		return ResultsPage{}, &domain.Error{Kind: domain.KindInvalid, Message: "invalid status filter",
			Fields: map[string]string{"status": "must be one of created, updated, deleted, unchanged, conflict, failed, differs, waiting"}}
	}
	if !isRealtime(partition) {
		if _, err := e.rec.GetRun(ctx, partition); err != nil {
			return ResultsPage{}, err
		}
	}
	rs, next, err := e.rec.Results(ctx, partition, status, limit, token)
	if err != nil {
		return ResultsPage{}, err
	}
	page := ResultsPage{Items: make([]ResultItem, 0, len(rs)), Next: next}
	for _, r := range rs {
		page.Items = append(page.Items, resultItem(r))
	}
	return page, nil
}

func resultItem(r table.Result) ResultItem {
	it := ResultItem{Entity: r.Entity, ID: r.ID, Status: r.Status, Reason: r.Reason, At: domain.FormatTime(r.At),
		Attempts: r.Attempts, Retry: r.Retry}
	if !r.Version.IsZero() {
		it.Version = domain.FormatTime(r.Version)
	}
	if json.Valid([]byte(r.Detail)) {
		it.Detail = json.RawMessage(r.Detail)
	}
	return it
}

var realtimePattern = regexp.MustCompile(`^realtime-\d{8}$`)

func isRealtime(partition string) bool { return realtimePattern.MatchString(partition) }
