package table

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Retention deletes what is older than a horizon: whole runs and whole
// real-time days. Every step is an idempotent delete, so a pass that stops
// anywhere (crash, timeout, storage down) leaves a state the next pass
// finishes:
//
//  1. the run entity is marked "deleting" (guarded by the ETag the caller
//     decided on): from then on GetRun answers NotFound and ListRuns leaves
//     the run out, so no client ever sees a half-deleted run;
//  2. every entity of each of the run's partitions (plan pages, results,
//     counter shards, attempt errors) is deleted, a page of keys at a time,
//     in entity-group transactions of at most 100 deletes of one partition
//     (the service's limit; deletes carry no body, far below 4 MiB);
//  3. the run entity goes last, so a marked run is always found again.
const (
	deletingProperty = "deleting"
	// deleteTxn is the most operations an entity-group transaction takes.
	deleteTxn = 100
	// keysPage is how many keys one query reads (the service's page size):
	// what a deletion holds in memory at a time.
	keysPage = 1000
	// deleteWorkers bounds the transactions a deletion has in flight.
	deleteWorkers = 8
)

// ExpiringRun is a run created before a retention horizon.
type ExpiringRun struct {
	Run
	Deleting bool        // marked by a pass that did not finish: finish it
	ETag     azcore.ETag // of the run entity as listed, for MarkRunDeleting
}

// runKeyBefore is the RowKey prefix of runs created at t: run ids start with
// 13 digits of (9999999999999 - creation ms), so the runs created at or
// before t have RowKeys >= it.
func runKeyBefore(t time.Time) string {
	return fmt.Sprintf("%013d", 9_999_999_999_999-t.UnixMilli())
}

// ExpiringRuns lists at most limit runs created before `before`, newest
// first, marked ones included, after run id `after` ("" from the first).
// Run ids are time-inverted, so this is one range query; the creation time
// is checked too, for runs whose ids were chosen otherwise.
func (s *Store) ExpiringRuns(ctx context.Context, before time.Time, after string, limit int) ([]ExpiringRun, error) {
	filter := "PartitionKey eq '" + runPartition + "' and RowKey ge '" + runKeyBefore(before) + "'"
	if after != "" {
		if err := checkKey("run id", after); err != nil {
			return nil, err
		}
		filter += " and RowKey gt '" + after + "'"
	}
	pager := s.runs.NewListEntitiesPager(&aztables.ListEntitiesOptions{
		Filter: &filter, Select: to.Ptr(runListSelect + "," + deletingProperty), Top: to.Ptr(int32(min(max(limit, 1), keysPage))),
	})
	var out []ExpiringRun
	for pager.More() && len(out) < limit {
		page, err := pager.NextPage(ctx)
		if hasCode(err, string(aztables.TableNotFound)) {
			return nil, nil
		}
		if err != nil {
			return nil, wrap(err, "list expiring runs")
		}
		for _, raw := range page.Entities {
			e, err := unmarshal(raw)
			if err != nil {
				return nil, err
			}
			r := runFrom(e)
			if !r.CreatedTime.IsZero() && !r.CreatedTime.Before(before) {
				continue
			}
			out = append(out, ExpiringRun{Run: r, Deleting: deleting(e), ETag: azcore.ETag(e.ETag)})
			if len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

// deleting reports the mark; a $select of a property an entity lacks may
// answer it as null, which is no mark.
func deleting(e aztables.EDMEntity) bool {
	return e.Properties[deletingProperty] != nil
}

// MarkRunDeleting marks run id as being deleted, if its entity still has
// etag (azcore.ETagAny: whatever it holds). Conflict if the run changed
// since it was listed (the caller decides again on a later pass); NotFound
// if it is gone.
func (s *Store) MarkRunDeleting(ctx context.Context, id string, etag azcore.ETag, at time.Time) error {
	if err := checkKey("run id", id); err != nil {
		return err
	}
	// Milliseconds survive any store's DateTime precision, so the mark
	// reads back equal (below).
	at = at.UTC().Truncate(time.Millisecond)
	body, err := marshal(id, runPartition, map[string]any{deletingProperty: aztables.EDMDateTime(at)})
	if err != nil {
		return err
	}
	_, err = s.runs.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge, IfMatch: &etag})
	if status, _ := failure(err); status == 412 {
		// A merge whose answer was lost, retried by the SDK, meets its own
		// change: the mark it set, to the exact time, says it is done.
		if cur, gerr := s.runs.GetEntity(ctx, runPartition, id, nil); gerr == nil {
			if e, uerr := unmarshal(cur.Value); uerr == nil && propTime(e.Properties, deletingProperty).Equal(at) {
				return nil
			}
		}
		return domain.Errorf(domain.KindConflict, "run %s changed since it was listed", id)
	}
	return wrap(err, "mark run "+id+" deleting")
}

// DeleteRun deletes every entity of a run marked deleting, then the run
// entity; parts is the run's P. It returns how many entities it deleted.
// Calling it again after any failure finishes the job.
func (s *Store) DeleteRun(ctx context.Context, id string, parts int) (int64, error) {
	if err := checkKey("run id", id); err != nil {
		return 0, err
	}
	partitions := []string{id} // plan pages (and everything when P = 1)
	if parts > 1 {
		partitions = append(partitions, layout{run: id, parts: parts}.partitions()...)
	}
	var n int64
	for _, p := range partitions {
		k, err := s.deleteRange(ctx, "PartitionKey eq '"+quote(p)+"'")
		n += k
		if err != nil {
			return n, err
		}
	}
	if _, err := s.runs.DeleteEntity(ctx, runPartition, id, nil); err != nil {
		if status, _ := failure(err); status != 404 {
			return n, wrap(err, "delete run "+id)
		}
		return n, nil
	}
	return n + 1, nil
}

// DeleteRealtimeBefore deletes every real-time outcome recorded on a UTC
// day before `before`'s: all 33 partitions of each such day (the day's own,
// -00..-15, -b00..-b15), bucket details and attempt errors included. One
// range query over PartitionKeys finds them: "realtime-YYYYMMDD" of the
// first day kept sorts after every partition of the days before it.
func (s *Store) DeleteRealtimeBefore(ctx context.Context, before time.Time) (int64, error) {
	filter := "PartitionKey ge 'realtime-' and PartitionKey lt '" + RealtimePartition(before) + "'"
	return s.deleteRange(ctx, filter)
}

// deleteRange deletes every SyncResults entity filter selects, a page of
// keys at a time, until a query finds none. A transaction that fails
// because another deleter got to one of its entities first (404) is
// harmless: the next query lists what is left.
func (s *Store) deleteRange(ctx context.Context, filter string) (int64, error) {
	var total int64
	for failures := 0; ; {
		page, err := s.results.NewListEntitiesPager(&aztables.ListEntitiesOptions{
			Filter: &filter, Select: to.Ptr("PartitionKey,RowKey"), Top: to.Ptr(int32(keysPage)),
		}).NextPage(ctx)
		if hasCode(err, string(aztables.TableNotFound)) {
			return total, nil
		}
		if err != nil {
			return total, wrap(err, "list entities to delete")
		}
		if len(page.Entities) == 0 {
			return total, nil
		}
		txns, err := deleteTxns(page.Entities)
		if err != nil {
			return total, err
		}
		n, err := s.submitAll(ctx, txns)
		total += n
		// A 404 only means someone else deleted first, and any failure is
		// retried from a fresh list; a page that deletes nothing three
		// times running stops the pass (the next one goes on).
		if err != nil && n == 0 {
			if failures++; failures >= 3 {
				return total, wrap(err, "delete entities")
			}
		} else {
			failures = 0
		}
	}
}

// deleteTxns groups keys (in PartitionKey order, as queries return them)
// into delete transactions of one partition and at most deleteTxn each.
func deleteTxns(raws [][]byte) ([][]aztables.TransactionAction, error) {
	var (
		txns [][]aztables.TransactionAction
		cur  []aztables.TransactionAction
		pk   string
	)
	for _, raw := range raws {
		e, err := unmarshal(raw)
		if err != nil {
			return nil, err
		}
		if len(cur) > 0 && (e.PartitionKey != pk || len(cur) == deleteTxn) {
			txns, cur = append(txns, cur), nil
		}
		pk = e.PartitionKey
		body, err := marshal(e.RowKey, e.PartitionKey, nil)
		if err != nil {
			return nil, err
		}
		cur = append(cur, aztables.TransactionAction{ActionType: aztables.TransactionTypeDelete, Entity: body})
	}
	if len(cur) > 0 {
		txns = append(txns, cur)
	}
	return txns, nil
}

// submitAll submits txns, at most deleteWorkers at a time, and returns how
// many entities the successful ones deleted.
func (s *Store) submitAll(ctx context.Context, txns [][]aztables.TransactionAction) (int64, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		n    int64
		errs []error
		sem  = make(chan struct{}, deleteWorkers)
	)
	for _, acts := range txns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := s.results.SubmitTransaction(ctx, acts, nil)
			if status, _ := failure(err); status == 404 {
				// A delete that meets nothing: most likely this very
				// transaction, carried out with its answer lost and retried
				// by the SDK. Gone is what we want: finish one by one.
				err = s.deleteEach(ctx, acts)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			n += int64(len(acts))
		})
	}
	wg.Wait()
	return n, errors.Join(errs...)
}

// deleteEach deletes the entities of delete actions one at a time; one
// that is gone already counts as deleted.
func (s *Store) deleteEach(ctx context.Context, acts []aztables.TransactionAction) error {
	for _, a := range acts {
		e, err := unmarshal(a.Entity)
		if err != nil {
			return err
		}
		_, err = s.results.DeleteEntity(ctx, e.PartitionKey, e.RowKey, nil)
		if status, _ := failure(err); err != nil && status != 404 {
			return err
		}
	}
	return nil
}
