package table

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
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
}

// maxCountAttempts bounds the ETag retries of one RecordRunResult; with 16
// shards even a burst of concurrent items per shard settles well within it.
const maxCountAttempts = 60

// RecordRunResult records the first outcome of an item in run runID and
// counts it, atomically: one transaction adds the result entity and bumps
// the status's counter on shard id%16, guarded by the shard's ETag (re-read
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
	result, err := marshal(itemKey("result", r.Entity, r.ID), runID, resultProperties(r))
	if err != nil {
		return false, err
	}
	shard := shardKey(int(r.ID % Shards))
	for attempt := 0; ; attempt++ {
		resp, err := s.results.GetEntity(ctx, runID, shard, nil)
		if err != nil {
			return false, wrap(err, "read counter shard of run "+runID)
		}
		e, err := unmarshal(resp.Value)
		if err != nil {
			return false, err
		}
		n := propInt64(e.Properties, prop)
		counter, err := marshal(shard, runID, map[string]any{prop: int32(n + 1)})
		if err != nil {
			return false, err
		}
		etag := resp.ETag
		if s.beforeCount != nil {
			s.beforeCount(attempt)
		}
		// The Add comes first so that a duplicate fails on it (409) whatever
		// the shard's ETag; a 412 then only means a lost counting race.
		_, err = s.results.SubmitTransaction(ctx, []aztables.TransactionAction{
			{ActionType: aztables.TransactionTypeAdd, Entity: result},
			{ActionType: aztables.TransactionTypeUpdateMerge, Entity: counter, IfMatch: &etag},
		}, nil)
		if err == nil {
			return true, nil
		}
		switch status, code := failure(err); {
		case status == 409 || code == string(aztables.EntityAlreadyExists):
			return false, nil
		case status == 412 || code == string(aztables.UpdateConditionNotSatisfied):
			if attempt+1 >= maxCountAttempts {
				return false, domain.Errorf(domain.KindUnavailable,
					"count result of run %s: shard %s stayed contended for %d attempts", runID, shard, maxCountAttempts)
			}
			if err := sleep(ctx, backoff(attempt)); err != nil {
				return false, wrap(err, "count result of run "+runID)
			}
		default:
			return false, wrap(err, "record result of run "+runID)
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

// RealtimePartition is the SyncResults partition of real-time outcomes
// recorded at t.
func RealtimePartition(t time.Time) string { return "realtime-" + t.UTC().Format("20060102") }

// RecordRealtime upserts r into partition realtime-YYYYMMDD (the UTC date of
// r.At, now if zero); nothing is counted.
func (s *Store) RecordRealtime(ctx context.Context, r Result) error {
	if r.At.IsZero() {
		r.At = time.Now()
	}
	partition := RealtimePartition(r.At)
	if err := checkItem(partition, r.Entity, r.ID); err != nil {
		return err
	}
	if _, ok := statusProperty(r.Status); !ok {
		return domain.Errorf(domain.KindInvalid, "unknown outcome status %q", r.Status)
	}
	body, err := marshal(itemKey("result", r.Entity, r.ID), partition, resultProperties(r))
	if err != nil {
		return err
	}
	if _, err := s.results.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return wrap(err, "record real-time result")
	}
	return nil
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
	return p
}

func resultFrom(e aztables.EDMEntity) Result {
	p := e.Properties
	return Result{
		Entity:  domain.Entity(propString(p, "entity")),
		ID:      propInt64(p, "id"),
		Status:  propString(p, "status"),
		Reason:  propString(p, "reason"),
		Detail:  propString(p, "detail"),
		Version: propTime(p, "updatedAt"),
		At:      propTime(p, "at"),
	}
}

// Progress is a run's progress as its counter shards and plan pages say.
type Progress struct {
	Counts      map[string]int64 // summed over shards, keyed by status (every status present)
	Done        int64            // sum of Counts
	Pages       []PlanPage       // ordered by After
	LastUpdated time.Time        // newest Timestamp among these entities
}

// Progress reads run runID's counter shards and plan pages: two RowKey range
// queries, issued concurrently, that never touch the result entities.
// NotFound if the run has no counter shards.
func (s *Store) Progress(ctx context.Context, runID string) (Progress, error) {
	if err := checkKey("run id", runID); err != nil {
		return Progress{}, err
	}
	var (
		wg             sync.WaitGroup
		shards, pages  []aztables.EDMEntity
		shardErr, pErr error
	)
	wg.Go(func() { shards, shardErr = s.queryAll(ctx, rangeFilter(runID, "count")) })
	wg.Go(func() { pages, pErr = s.queryAll(ctx, rangeFilter(runID, "plan")) })
	wg.Wait()
	if shardErr != nil {
		return Progress{}, wrap(shardErr, "read counters of run "+runID)
	}
	if pErr != nil {
		return Progress{}, wrap(pErr, "read plan of run "+runID)
	}
	if len(shards) == 0 {
		// CreateRun always makes the shards: no shards, no run.
		return Progress{}, domain.Errorf(domain.KindNotFound, "run %s has no counters", runID)
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
	for _, e := range shards {
		for _, st := range Statuses() {
			name, _ := statusProperty(st)
			n := propInt64(e.Properties, name)
			p.Counts[st] += n
			p.Done += n
		}
		newest(e)
	}
	for _, e := range pages { // RowKey order is After order (zero-padded)
		p.Pages = append(p.Pages, planFrom(e))
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

func (s *Store) queryAll(ctx context.Context, filter string) ([]aztables.EDMEntity, error) {
	pager := s.results.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter})
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

// continuation is the SDK's continuation, carried opaquely in a token,
// together with the query it continues so a token cannot be replayed
// against another partition or status.
type continuation struct {
	Partition string `json:"p"`
	Status    string `json:"s,omitempty"`
	PK        string `json:"pk"`
	RK        string `json:"rk"`
}

// Results returns one page (at most limit, default 100, at most 1000) of the
// result entities of partition, in RowKey order, only those with status if
// it is not "". token is "" for the first page and next for the following
// ones; next is "" at the end. A page may be short (even empty) while next
// is not "": the service stops at its scan limits, and a filter skips rows.
func (s *Store) Results(ctx context.Context, partition, status string, limit int, token string) ([]Result, string, error) {
	if err := checkKey("partition", partition); err != nil {
		return nil, "", err
	}
	if status != "" {
		if _, ok := statusProperty(status); !ok {
			return nil, "", domain.Errorf(domain.KindInvalid, "unknown outcome status %q", status)
		}
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	opts := &aztables.ListEntitiesOptions{Top: to.Ptr(int32(limit))}
	if token != "" {
		c, err := decodeToken(token)
		if err != nil {
			return nil, "", err
		}
		if c.Partition != partition || c.Status != status {
			return nil, "", domain.Errorf(domain.KindInvalid, "continuation token belongs to another query")
		}
		opts.NextPartitionKey, opts.NextRowKey = &c.PK, &c.RK
	}
	filter := rangeFilter(partition, "result")
	if status != "" {
		filter += " and status eq '" + status + "'"
	}
	opts.Filter = &filter
	page, err := s.results.NewListEntitiesPager(opts).NextPage(ctx)
	if err != nil {
		if hasCode(err, "InvalidInput") || hasCode(err, "OutOfRangeInput") {
			// The service rejected the continuation we were handed.
			return nil, "", domain.Wrap(domain.KindInvalid, err, "invalid continuation token")
		}
		return nil, "", wrap(err, "list results of "+partition)
	}
	rs := make([]Result, 0, len(page.Entities))
	for _, raw := range page.Entities {
		e, err := unmarshal(raw)
		if err != nil {
			return nil, "", err
		}
		rs = append(rs, resultFrom(e))
	}
	var next string
	if pk, rk := deref(page.NextPartitionKey), deref(page.NextRowKey); pk != "" || rk != "" {
		next = encodeToken(continuation{Partition: partition, Status: status, PK: pk, RK: rk})
	}
	return rs, next, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func encodeToken(c continuation) string {
	b, _ := json.Marshal(c) // two strings: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(token string) (continuation, error) {
	var c continuation
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return c, domain.Wrap(domain.KindInvalid, err, "invalid continuation token")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || (c.PK == "" && c.RK == "") {
		return c, domain.Errorf(domain.KindInvalid, "invalid continuation token")
	}
	return c, nil
}
