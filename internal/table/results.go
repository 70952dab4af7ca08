package table

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Result is one item's outcome.
type Result struct {
	Entity  domain.Entity
	ID      int64
	Status  string    // created, updated, deleted, unchanged, conflict, failed
	Reason  string    // for failed / conflict
	Detail  string    // a JSON document: for a conflict, both versions and the merged result; empty otherwise
	Version time.Time // updatedAt of the winning row (zero if none)
	At      time.Time // when recorded
	// Ver is the version vector both databases hold after this outcome
	// (zero for failed and for an item in neither database): real-time
	// outcomes of one item are ordered by it, never by arrival.
	Ver domain.Vector
	// Retry is the retry round (retry.go) that recorded this outcome, 0
	// for the run's own; Attempts how many attempts failed before a failed
	// outcome was recorded (0 when unknown or not failed).
	Retry    int
	Attempts int
}

// maxCountAttempts bounds the ETag retries of one RecordRunResult; with 16
// shards even a burst of concurrent items per shard settles well within it.
const maxCountAttempts = 60

// RecordRunResult records the first outcome of an item in run runID and
// counts it, atomically: one transaction, in the item's partition of the
// run, adds the result entity and bumps the status's counter on one of the
// partition's 16 shards, guarded by the shard's ETag (re-read
// and retried when another writer got there first). If the item already has
// a result (a duplicate or redelivered message) nothing changes and recorded
// is false.
func (s *Store) RecordRunResult(ctx context.Context, runID string, r Result) (recorded bool, err error) {
	if err := checkItem(runID, r.Entity, r.ID); err != nil {
		return false, err
	}
	prop, ok := statusProperty(r.Status)
	if !ok {
		return false, domain.Errorf(domain.KindInvalid, "unknown outcome status %q", r.Status)
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	l, err := s.layoutOf(ctx, runID)
	if err != nil {
		return false, err
	}
	part, shard := l.item(r.ID)
	return s.addCounted(ctx, "result", runID, part, shard, itemKey("result", r.Entity, r.ID), resultProperties(r), func(shard map[string]any) map[string]any {
		return map[string]any{prop: int32(propInt64(shard, prop) + 1)}
	})
}

// addCounted adds entity to partition part together with an update of the
// counter shard that count computes from the shard as read: one
// entity-group transaction guarded by the shard's ETag (re-read and retried
// when another writer got there first). The Add comes first, so a duplicate
// (a redelivered message) fails on it (409) whatever the shard's ETag, and
// added is false; a 412 only means a lost counting race. The entity (row,
// props) carries this call's token: a transaction whose answer was lost and
// that the SDK retried meets its own entity, and then added is true (it was
// counted once, by the first try).
func (s *Store) addCounted(ctx context.Context, what, runID, part, shard, row string, props map[string]any, count func(shard map[string]any) map[string]any) (added bool, err error) {
	token := newToken()
	props[opProperty] = token
	entity, err := marshal(row, part, props)
	if err != nil {
		return false, err
	}
	for attempt := 0; ; attempt++ {
		resp, err := s.results.GetEntity(ctx, part, shard, nil)
		if err != nil {
			return false, wrap(err, "read counter shard of run "+runID)
		}
		e, err := unmarshal(resp.Value)
		if err != nil {
			return false, err
		}
		counter, err := marshal(shard, part, count(e.Properties))
		if err != nil {
			return false, err
		}
		etag := resp.ETag
		if s.beforeCount != nil {
			s.beforeCount(attempt)
		}
		_, err = s.results.SubmitTransaction(ctx, []aztables.TransactionAction{
			{ActionType: aztables.TransactionTypeAdd, Entity: entity},
			{ActionType: aztables.TransactionTypeUpdateMerge, Entity: counter, IfMatch: &etag},
		}, nil)
		if err == nil {
			return true, nil
		}
		switch status, code := failure(err); {
		case status == 409 || code == string(aztables.EntityAlreadyExists):
			mine, rerr := s.madeBy(ctx, s.results, part, row, token, err)
			if rerr != nil {
				return false, wrap(rerr, "read "+what+" of run "+runID)
			}
			return mine, nil
		case status == 412 || code == string(aztables.UpdateConditionNotSatisfied):
			if attempt+1 >= maxCountAttempts {
				return false, domain.Errorf(domain.KindUnavailable,
					"count %s of run %s: shard %s stayed contended for %d attempts", what, runID, shard, maxCountAttempts)
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return false, wrap(err, "count "+what+" of run "+runID)
			}
		default:
			return false, wrap(err, "record "+what+" of run "+runID)
		}
	}
}

// backoff is full jitter over a delay that doubles from 4ms up to 256ms.
func backoff(attempt int) time.Duration {
	d := 4 * time.Millisecond << min(attempt, 6)
	return d/4 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func resultProperties(r Result) map[string]any {
	p := map[string]any{
		"entity": string(r.Entity),
		"id":     aztables.EDMInt64(r.ID),
		"status": r.Status,
		"reason": r.Reason,
	}
	if r.Detail != "" {
		p["detail"] = r.Detail
	}
	setTime(p, "updatedAt", r.Version)
	setTime(p, "at", r.At)
	if r.Retry > 0 {
		p["retry"] = int32(r.Retry)
	}
	if r.Attempts > 0 {
		p["attempts"] = int32(r.Attempts)
	}
	return p
}

func resultFrom(e aztables.EDMEntity) Result {
	p := e.Properties
	return Result{
		Entity:   domain.Entity(propString(p, "entity")),
		ID:       propInt64(p, "id"),
		Status:   propString(p, "status"),
		Reason:   propString(p, "reason"),
		Detail:   propString(p, "detail"),
		Version:  propTime(p, "updatedAt"),
		At:       propTime(p, "at"),
		Retry:    int(propInt64(p, "retry")),
		Attempts: int(propInt64(p, "attempts")),
	}
}

// Progress is a run's progress as its counter shards and plan pages say.
type Progress struct {
	Counts      map[string]int64 // summed over shards, keyed by status (every status present)
	Done        int64            // sum of Counts
	Pages       []PlanPage       // ordered by After, without their ids
	LastUpdated time.Time        // newest Timestamp among these entities
	Retried     int64            // outcomes of retry rounds recorded in place of failed ones (retry.go)
	// Diff and verify runs (ranges.go): ranges compared, items found in
	// them, and items counted unchanged in bulk.
	Ranges, Items, Compared int64
}

// ErrNoCounters marks a run whose counter shards are missing: one created
// before CreateRun wrote the shards first, by a creation interrupted
// between the run entity and its shards. Such a run can never complete.
var ErrNoCounters = errors.New("the run has no counter shards")

// Progress reads run runID's counter shards and plan pages: one RowKey range
// query per partition of the run for the shards and one for the pages (the
// ids left out), all issued concurrently; they never touch the result
// entities. NotFound if there is no such run; NotFound wrapping
// ErrNoCounters if a partition of the run has no shards.
func (s *Store) Progress(ctx context.Context, runID string) (Progress, error) {
	l, err := s.layoutOf(ctx, runID)
	if err != nil {
		return Progress{}, err
	}
	parts := l.partitions()
	var (
		wg     sync.WaitGroup
		shards = make([][]aztables.EDMEntity, len(parts))
		errs   = make([]error, len(parts))
		pages  []aztables.EDMEntity
		pErr   error
	)
	for i, part := range parts {
		wg.Go(func() { shards[i], errs[i] = s.queryAll(ctx, rangeFilter(part, "count"), "") })
	}
	wg.Go(func() { pages, pErr = s.queryAll(ctx, rangeFilter(runID, "plan"), planSelect) })
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Progress{}, wrap(err, "read counters of run "+runID)
	}
	if pErr != nil {
		return Progress{}, wrap(pErr, "read plan of run "+runID)
	}
	p := Progress{Counts: map[string]int64{}}
	for _, st := range Statuses() {
		p.Counts[st] = 0
	}
	newest := func(e aztables.EDMEntity) {
		if ts := time.Time(e.Timestamp).UTC(); ts.After(p.LastUpdated) {
			p.LastUpdated = ts
		}
	}
	for i, set := range shards {
		if len(set) == 0 {
			return Progress{}, domain.Wrap(domain.KindNotFound, ErrNoCounters, "run "+runID+" has no counters in partition "+parts[i])
		}
		for _, e := range set {
			for _, st := range countedStatuses() {
				name, _ := statusProperty(st)
				n := propInt64(e.Properties, name)
				p.Counts[st] += n
				p.Done += n
			}
			p.Retried += propInt64(e.Properties, retriedProperty)
			p.Ranges += propInt64(e.Properties, rangesProp)
			p.Items += propInt64(e.Properties, itemsProp)
			p.Compared += propInt64(e.Properties, comparedProp)
			newest(e)
		}
	}
	if p.Counts[StatusDiffers] == 0 {
		delete(p.Counts, StatusDiffers) // only verify runs count it (ranges.go)
	}
	for _, e := range pages { // RowKey order is After order (zero-padded)
		page, err := planFrom(e, false)
		if err != nil {
			return Progress{}, err
		}
		p.Pages = append(p.Pages, page)
		newest(e)
	}
	return p, nil
}

// rangeFilter selects RowKeys "<prefix>-..." in one partition: '.' is the
// character after '-', so the range holds exactly that prefix.
func rangeFilter(partition, prefix string) string {
	return "PartitionKey eq '" + quote(partition) + "' and RowKey ge '" + prefix + "-' and RowKey lt '" + prefix + ".'"
}

func quote(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func (s *Store) queryAll(ctx context.Context, filter, sel string) ([]aztables.EDMEntity, error) {
	opts := &aztables.ListEntitiesOptions{Filter: &filter}
	if sel != "" {
		opts.Select = &sel
	}
	pager := s.results.NewListEntitiesPager(opts)
	var out []aztables.EDMEntity
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, raw := range page.Entities {
			e, err := unmarshal(raw)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
	}
	return out, nil
}
