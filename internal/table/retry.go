package table

import (
	"context"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Retry rounds: the failed items of a finished run can be sent again. A
// round has a number (Run.RetryRound, 1, 2, ...) that its item messages
// carry; the outcome of a retried item replaces its failed outcome in one
// entity-group transaction of the item's partition, which
//   - replaces the result entity, guarded by its ETag, and only while it is
//     failed and was recorded by an earlier round, and
//   - moves one count on the item's counter shard from Failed to the new
//     outcome's status and adds one to the shard's Retried, guarded by the
//     shard's ETag.
//
// A redelivered or duplicate message of a round finds the item recorded by
// that round and changes nothing, so the counts stay exact: Failed goes down
// by one for each retried item that now succeeds, its new status up by one,
// and Retried, summed over the shards, counts each retried item once.

// retriedProperty counts, on a counter shard, the retried outcomes
// recorded in place of failed ones.
const retriedProperty = "Retried"

// ReplaceFailed records r, the outcome of retry round r.Retry (>= 1) for
// item r.ID of run runID, in place of the item's failed outcome, and moves
// its count (see above). replaced is false, and nothing changes, when the
// item has no outcome, one that is not failed, or one recorded by round
// r.Retry or a later one.
func (s *Store) ReplaceFailed(ctx context.Context, runID string, r Result) (replaced bool, err error) {
	if err := checkItem(runID, r.Entity, r.ID); err != nil {
		return false, err
	}
	if r.Retry < 1 {
		return false, domain.Errorf(domain.KindInvalid, "a retried outcome needs its round, got %d", r.Retry)
	}
	prop, ok := statusProperty(r.Status)
	if !ok {
		return false, domain.Errorf(domain.KindInvalid, "unknown outcome status %q", r.Status)
	}
	failedProp, _ := statusProperty(StatusFailed)
	if r.At.IsZero() {
		r.At = time.Now()
	}
	l, err := s.layoutOf(ctx, runID)
	if err != nil {
		return false, err
	}
	part, shard := l.item(r.ID)
	key := itemKey("result", r.Entity, r.ID)
	// The token tells our own replace, carried out with its answer lost,
	// from another delivery's (see opProperty).
	token := newToken()
	props := resultProperties(r)
	props[opProperty] = token
	body, err := marshal(key, part, props)
	if err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		cur, err := s.results.GetEntity(ctx, part, key, nil)
		if err != nil {
			if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
				return false, nil
			}
			return false, wrap(err, "read result of run "+runID)
		}
		ce, err := unmarshal(cur.Value)
		if err != nil {
			return false, err
		}
		if old := resultFrom(ce); old.Status != StatusFailed || old.Retry >= r.Retry {
			return attempt > 0 && propString(ce.Properties, opProperty) == token, nil
		}
		sh, err := s.results.GetEntity(ctx, part, shard, nil)
		if err != nil {
			return false, wrap(err, "read counter shard of run "+runID)
		}
		se, err := unmarshal(sh.Value)
		if err != nil {
			return false, err
		}
		counts := map[string]any{retriedProperty: int32(propInt64(se.Properties, retriedProperty) + 1)}
		if prop != failedProp {
			// A shard's Failed may be 0 while the item's failed outcome was
			// counted on it: never, as both are written in one transaction.
			counts[failedProp] = int32(propInt64(se.Properties, failedProp) - 1)
			counts[prop] = int32(propInt64(se.Properties, prop) + 1)
		}
		counter, err := marshal(shard, part, counts)
		if err != nil {
			return false, err
		}
		retag, setag := cur.ETag, sh.ETag
		_, err = s.results.SubmitTransaction(ctx, []aztables.TransactionAction{
			{ActionType: aztables.TransactionTypeUpdateReplace, Entity: body, IfMatch: &retag},
			{ActionType: aztables.TransactionTypeUpdateMerge, Entity: counter, IfMatch: &setag},
		}, nil)
		if err == nil {
			return true, nil
		}
		status, code := failure(err)
		if status != 412 && code != string(aztables.UpdateConditionNotSatisfied) {
			return false, wrap(err, "record retried result of run "+runID)
		}
		if attempt+1 >= maxCountAttempts {
			return false, domain.Errorf(domain.KindUnavailable,
				"record retried result of run %s: shard %s stayed contended for %d attempts", runID, shard, maxCountAttempts)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return false, wrap(err, "record retried result of run "+runID)
		}
	}
}

// StartRetry starts retry round `round` of run runID, which sends items
// more items: the run entity is replaced, guarded by its ETag, with status
// Running, the round, RetryTotal grown by items, and without its cached
// counts and output (they change as retried outcomes come in). Conflict if
// the run's round is not round-1 (another round started first).
func (s *Store) StartRetry(ctx context.Context, runID string, round int, items int64, now time.Time) (Run, error) {
	if err := checkKey("run id", runID); err != nil {
		return Run{}, err
	}
	resp, err := s.runs.GetEntity(ctx, runPartition, runID, nil)
	if err != nil {
		return Run{}, wrap(err, "get run "+runID)
	}
	e, err := unmarshal(resp.Value)
	if err != nil {
		return Run{}, err
	}
	r := runFrom(e)
	if r.RetryRound != round-1 {
		return Run{}, domain.Errorf(domain.KindConflict, "run %s: retry round %d has started already", runID, r.RetryRound)
	}
	r.Status, r.Counts, r.Output = RunRunning, nil, ""
	r.RetryRound, r.RetryTotal = round, r.RetryTotal+items
	if r.FinishedTime.IsZero() {
		r.FinishedTime = r.LastUpdatedTime // the run's own end, kept from the first round on
	}
	r.LastUpdatedTime, r.RetryStartedTime = now, now
	token := newToken()
	props := runProperties(r, true)
	props[opProperty] = token
	body, err := marshal(r.ID, runPartition, props)
	if err != nil {
		return Run{}, err
	}
	etag := resp.ETag
	if _, err := s.runs.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeReplace, IfMatch: &etag}); err != nil {
		if st, _ := failure(err); st == 412 {
			// A replace whose answer was lost, retried by the SDK, meets
			// its own change: the round started, by this call.
			if cur, gerr := s.runs.GetEntity(ctx, runPartition, runID, nil); gerr == nil {
				if e, uerr := unmarshal(cur.Value); uerr == nil && propString(e.Properties, opProperty) == token {
					return r, nil
				}
			}
			return Run{}, domain.Errorf(domain.KindConflict, "run %s changed while its retry started; try again", runID)
		}
		return Run{}, wrap(err, "start retry of run "+runID)
	}
	return r, nil
}

// maxRetryingReads bounds the items Retrying looks at.
const maxRetryingReads = 100

// Retrying counts the items of run runID with a failed attempt and no
// outcome yet: the queue will try them again. It reads each partition's
// attempt entities (one range query each, concurrently) and the results
// of at most maxRetryingReads of them.
func (s *Store) Retrying(ctx context.Context, runID string) (int64, error) {
	l, err := s.layoutOf(ctx, runID)
	if err != nil {
		return 0, err
	}
	parts := l.partitions()
	var (
		wg   sync.WaitGroup
		keys = make([][]string, len(parts))
		errs = make([]error, len(parts))
	)
	for i, part := range parts {
		wg.Go(func() {
			es, err := s.queryAll(ctx, rangeFilter(part, "error"), "RowKey")
			errs[i] = err
			for _, e := range es {
				keys[i] = append(keys[i], e.RowKey)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return 0, wrap(err, "read attempts of run "+runID)
		}
	}
	var (
		mu    sync.Mutex
		n     int64
		reads int
		rerrs []error
	)
	for i, ks := range keys {
		for _, k := range ks {
			if reads >= maxRetryingReads {
				break
			}
			reads++
			wg.Go(func() {
				_, err := s.results.GetEntity(ctx, parts[i], "result"+k[len("error"):], &aztables.GetEntityOptions{})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
				case domain.IsKind(wrap(err, ""), domain.KindNotFound):
					n++
				default:
					rerrs = append(rerrs, err)
				}
			})
		}
	}
	wg.Wait()
	if len(rerrs) > 0 {
		return 0, wrap(rerrs[0], "read results of run "+runID)
	}
	return n, nil
}

// Item returns the recorded outcome of item (e, id) in partition: a run
// (found beside its counter shard) or a day's real-time outcomes
// (realtime-YYYYMMDD, its bucket); ok is false if it has none.
func (s *Store) Item(ctx context.Context, partition string, e domain.Entity, id int64) (Result, bool, error) {
	if err := checkItem(partition, e, id); err != nil {
		return Result{}, false, err
	}
	if realtimeDay.MatchString(partition) {
		part, first := bucketOf(partition, id)
		resp, err := s.results.GetEntity(ctx, part, itemKey("result", e, first), nil)
		if err != nil {
			if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
				return Result{}, false, nil
			}
			return Result{}, false, wrap(err, "get real-time result")
		}
		ent, err := unmarshal(resp.Value)
		if err != nil {
			return Result{}, false, err
		}
		for _, k := range bucketFrom(ent, "", "") {
			if k.r.ID == id {
				items := []keyed{k}
				if err := s.fillApart(ctx, part, items); err != nil {
					return Result{}, false, err
				}
				return items[0].r, true, nil
			}
		}
		return Result{}, false, nil
	}
	part, err := s.itemPartition(ctx, partition, id)
	if err != nil {
		return Result{}, false, err
	}
	resp, err := s.results.GetEntity(ctx, part, itemKey("result", e, id), nil)
	if err != nil {
		if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
			return Result{}, false, nil
		}
		return Result{}, false, wrap(err, "get result")
	}
	ent, err := unmarshal(resp.Value)
	if err != nil {
		return Result{}, false, err
	}
	return resultFrom(ent), true, nil
}

// RunFilter narrows ListRunsWhere: runs of one entity (if set) whose
// RowKey (run id) is in [MinKey, MaxKey) (each bound if set). Run ids sort
// newest first, so a time range is a key range (the caller, which makes
// the ids, turns one into the other).
type RunFilter struct {
	Entity         domain.Entity
	MinKey, MaxKey string
}

// ListRunsWhere returns at most limit runs that match f, newest first.
func (s *Store) ListRunsWhere(ctx context.Context, f RunFilter, limit int) ([]Run, error) {
	if limit <= 0 {
		return nil, nil
	}
	filter := "PartitionKey eq '" + runPartition + "'"
	if f.Entity != "" {
		if !f.Entity.Valid() {
			return nil, domain.Errorf(domain.KindInvalid, "unknown entity %q", f.Entity)
		}
		filter += " and entity eq '" + string(f.Entity) + "'"
	}
	for _, b := range []struct{ op, key string }{{"ge", f.MinKey}, {"lt", f.MaxKey}} {
		if b.key == "" {
			continue
		}
		if err := checkKey("run id bound", b.key); err != nil {
			return nil, err
		}
		filter += " and RowKey " + b.op + " '" + quote(b.key) + "'"
	}
	pager := s.runs.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: to.Ptr(runListSelect + "," + deletingProperty), Top: to.Ptr(int32(min(limit, 1000)))})
	var runs []Run
	for pager.More() && len(runs) < limit {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, wrap(err, "list runs")
		}
		for _, raw := range page.Entities {
			e, err := unmarshal(raw)
			if err != nil {
				return nil, err
			}
			if deleting(e) { // half deleted by retention: never listed
				continue
			}
			runs = append(runs, runFrom(e))
			if len(runs) == limit {
				break
			}
		}
	}
	return runs, nil
}
