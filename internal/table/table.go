// Package table is the aztables adapter for sync runs and per-item results.
//
// SyncRuns holds one entity per run (PartitionKey "run", RowKey = run id).
// SyncResults holds, per partition (a run id, or realtime-YYYYMMDD), the
// result entities ("result-<entity>-<id>"), the last attempt errors
// ("error-<entity>-<id>"), and for runs the plan pages ("plan-<after>") and
// 16 counter shards ("count-00".."count-15"). Counting happens in the same
// entity-group transaction that adds a result, so a redelivered message can
// never be counted twice; sharding keeps ETag contention low.
package table

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Table names.
const (
	RunsTable    = "SyncRuns"
	ResultsTable = "SyncResults"
)

// Outcome statuses of an item.
const (
	StatusCreated   = "created"
	StatusUpdated   = "updated"
	StatusDeleted   = "deleted"
	StatusUnchanged = "unchanged"
	StatusConflict  = "conflict"
	StatusFailed    = "failed"
)

// Run statuses.
const (
	RunPending   = "Pending"
	RunRunning   = "Running"
	RunCompleted = "Completed"
	RunFailed    = "Failed"
)

const (
	runPartition = "run"
	// Shards is the number of counter shards per run.
	Shards = 16
)

// Statuses returns the outcome statuses in a stable order.
func Statuses() []string {
	return []string{StatusCreated, StatusUpdated, StatusDeleted, StatusUnchanged, StatusConflict, StatusFailed}
}

// statusProperty is the name of the property that holds a status's count:
// Int32 on counter shards, Int64 (prefixed "count") on run entities.
func statusProperty(status string) (string, bool) {
	switch status {
	case StatusCreated, StatusUpdated, StatusDeleted, StatusUnchanged, StatusConflict, StatusFailed:
		return strings.ToUpper(status[:1]) + status[1:], true
	}
	return "", false
}

// Options adjust a Store; nil means the defaults.
type Options struct {
	// Prefix is put before both table names, so tests sharing a storage
	// account (Azurite) do not fill the app's own tables. Letters and
	// digits, starting with a letter.
	Prefix string
}

// Store reads and writes both tables.
type Store struct {
	svc     *aztables.ServiceClient
	names   [2]string // runs, results
	runs    *aztables.Client
	results *aztables.Client
	// beforeCount, if set (by tests), runs between reading a counter shard
	// and the transaction that bumps it, to force a counting race.
	beforeCount func(attempt int)
}

// New returns a Store on svc's SyncRuns and SyncResults tables.
func New(svc *aztables.ServiceClient, o *Options) *Store {
	var prefix string
	if o != nil {
		prefix = o.Prefix
	}
	runs, results := prefix+RunsTable, prefix+ResultsTable
	return &Store{svc: svc, names: [2]string{runs, results}, runs: svc.NewClient(runs), results: svc.NewClient(results)}
}

// Ensure creates both tables if they are missing.
func (s *Store) Ensure(ctx context.Context) error {
	for _, name := range s.names {
		if _, err := s.svc.CreateTable(ctx, name, nil); err != nil && !hasCode(err, string(aztables.TableAlreadyExists)) {
			return wrap(err, "create table "+name)
		}
	}
	return nil
}

// Run is one sync run.
type Run struct {
	ID              string        // chosen by the caller (time-inverted, so RowKey order = newest first)
	Name            string        // orchestrator name echoed from the URL, may be ""
	Entity          domain.Entity // "product" or "user"
	Trigger         string        // "http", "timer"
	Input           string        // raw JSON input echoed in status, may be ""
	Status          string        // Pending, Running, Completed, Failed
	Reason          string        // why Failed
	CreatedTime     time.Time
	LastUpdatedTime time.Time
	Total           int64            // cached once known
	Counts          map[string]int64 // cached final counts per outcome (may be empty while running)
}

// CreateRun adds the run entity, then pre-creates its 16 counter shards in
// one transaction in SyncResults partition r.ID (a transaction cannot span
// the two tables; if the shards fail, the run entity is removed again so the
// id can be retried). A run id that exists is a Conflict.
func (s *Store) CreateRun(ctx context.Context, r Run) error {
	if err := checkKey("run id", r.ID); err != nil {
		return err
	}
	if !r.Entity.Valid() {
		return domain.Errorf(domain.KindInvalid, "run %s: unknown entity %q", r.ID, r.Entity)
	}
	if err := checkCounts(r.Counts); err != nil {
		return err
	}
	body, err := marshal(r.ID, runPartition, runProperties(r, true))
	if err != nil {
		return err
	}
	// A transaction cannot span tables, so the run goes first: its Add is
	// the existence check, and the shards are only created for a fresh id.
	if _, err := s.runs.AddEntity(ctx, body, nil); err != nil {
		return wrap(err, "create run "+r.ID)
	}
	actions := make([]aztables.TransactionAction, 0, Shards)
	for i := range Shards {
		props := map[string]any{}
		for _, st := range Statuses() {
			p, _ := statusProperty(st)
			props[p] = int32(0)
		}
		b, err := marshal(shardKey(i), r.ID, props)
		if err != nil {
			return err
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: b})
	}
	if _, err := s.results.SubmitTransaction(ctx, actions, nil); err != nil {
		// Undo the run so the caller can retry the same id; best effort, with
		// its own deadline since ctx may be what failed.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_, _ = s.runs.DeleteEntity(cctx, runPartition, r.ID, nil)
		cancel()
		return wrap(err, "create counter shards of run "+r.ID)
	}
	return nil
}

// GetRun reads one run; NotFound if it does not exist.
func (s *Store) GetRun(ctx context.Context, id string) (Run, error) {
	if err := checkKey("run id", id); err != nil {
		return Run{}, err
	}
	resp, err := s.runs.GetEntity(ctx, runPartition, id, nil)
	if err != nil {
		return Run{}, wrap(err, "get run "+id)
	}
	e, err := unmarshal(resp.Value)
	if err != nil {
		return Run{}, err
	}
	return runFrom(e), nil
}

// ListRuns returns at most limit runs, newest first (RowKey ascending).
func (s *Store) ListRuns(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 {
		return nil, nil
	}
	filter := "PartitionKey eq '" + runPartition + "'"
	pager := s.runs.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Top: to.Ptr(int32(min(limit, 1000)))})
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
			runs = append(runs, runFrom(e))
			if len(runs) == limit {
				break
			}
		}
	}
	return runs, nil
}

// UpdateRun merges the run's mutable fields (status, reason, total, counts,
// lastUpdatedTime, now if zero) into its entity; NotFound if it does not
// exist. The fields set at creation are kept as they are.
func (s *Store) UpdateRun(ctx context.Context, r Run) error {
	if err := checkKey("run id", r.ID); err != nil {
		return err
	}
	if err := checkCounts(r.Counts); err != nil {
		return err
	}
	if r.LastUpdatedTime.IsZero() {
		r.LastUpdatedTime = time.Now()
	}
	body, err := marshal(r.ID, runPartition, runProperties(r, false))
	if err != nil {
		return err
	}
	if _, err := s.runs.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		return wrap(err, "update run "+r.ID)
	}
	return nil
}

func runProperties(r Run, all bool) map[string]any {
	p := map[string]any{
		"status": r.Status,
		"reason": r.Reason,
		"total":  aztables.EDMInt64(r.Total),
	}
	if all {
		p["name"] = r.Name
		p["entity"] = string(r.Entity)
		p["trigger"] = r.Trigger
		p["input"] = r.Input
		setTime(p, "createdTime", r.CreatedTime)
	}
	setTime(p, "lastUpdatedTime", r.LastUpdatedTime)
	for st, n := range r.Counts {
		name, _ := statusProperty(st)
		p["count"+name] = aztables.EDMInt64(n)
	}
	return p
}

func runFrom(e aztables.EDMEntity) Run {
	p := e.Properties
	r := Run{
		ID:              e.RowKey,
		Name:            propString(p, "name"),
		Entity:          domain.Entity(propString(p, "entity")),
		Trigger:         propString(p, "trigger"),
		Input:           propString(p, "input"),
		Status:          propString(p, "status"),
		Reason:          propString(p, "reason"),
		CreatedTime:     propTime(p, "createdTime"),
		LastUpdatedTime: propTime(p, "lastUpdatedTime"),
		Total:           propInt64(p, "total"),
	}
	for _, st := range Statuses() {
		name, _ := statusProperty(st)
		if _, ok := p["count"+name]; ok {
			if r.Counts == nil {
				r.Counts = map[string]int64{}
			}
			r.Counts[st] = propInt64(p, "count"+name)
		}
	}
	return r
}

func checkCounts(counts map[string]int64) error {
	for st := range counts {
		if _, ok := statusProperty(st); !ok {
			return domain.Errorf(domain.KindInvalid, "unknown outcome status %q", st)
		}
	}
	return nil
}

// PlanPage records one page of a run's plan.
type PlanPage struct {
	After      int64 // ids > After were planned by this page
	Count      int   // how many item messages it enqueued
	Next       int64 // the After of the next page (the last id planned)
	Last       bool  // no more pages after this one
	NextQueued bool  // the next page's message was enqueued
}

func planKey(after int64) string { return fmt.Sprintf("plan-%019d", after) }

// GetPlanPage reads the plan page of run runID that starts after `after`;
// ok is false if it has not been recorded.
func (s *Store) GetPlanPage(ctx context.Context, runID string, after int64) (PlanPage, bool, error) {
	if err := checkKey("run id", runID); err != nil {
		return PlanPage{}, false, err
	}
	if after < 0 {
		return PlanPage{}, false, domain.Errorf(domain.KindInvalid, "plan page after %d is negative", after)
	}
	resp, err := s.results.GetEntity(ctx, runID, planKey(after), nil)
	if err != nil {
		if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
			return PlanPage{}, false, nil
		}
		return PlanPage{}, false, wrap(err, "get plan page of run "+runID)
	}
	e, err := unmarshal(resp.Value)
	if err != nil {
		return PlanPage{}, false, err
	}
	return planFrom(e), true, nil
}

// PutPlanPage inserts or replaces a plan page of run runID.
func (s *Store) PutPlanPage(ctx context.Context, runID string, p PlanPage) error {
	if err := checkKey("run id", runID); err != nil {
		return err
	}
	if p.After < 0 {
		return domain.Errorf(domain.KindInvalid, "plan page after %d is negative", p.After)
	}
	body, err := marshal(planKey(p.After), runID, map[string]any{
		"after":      aztables.EDMInt64(p.After),
		"count":      int32(p.Count),
		"next":       aztables.EDMInt64(p.Next),
		"last":       p.Last,
		"nextQueued": p.NextQueued,
	})
	if err != nil {
		return err
	}
	if _, err := s.results.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return wrap(err, "put plan page of run "+runID)
	}
	return nil
}

func planFrom(e aztables.EDMEntity) PlanPage {
	p := e.Properties
	return PlanPage{
		After:      propInt64(p, "after"),
		Count:      int(propInt64(p, "count")),
		Next:       propInt64(p, "next"),
		Last:       propBool(p, "last"),
		NextQueued: propBool(p, "nextQueued"),
	}
}

// RecordAttemptError upserts the last error of a failed attempt on item
// (e, id) in partition (a run id or realtime-YYYYMMDD).
func (s *Store) RecordAttemptError(ctx context.Context, partition string, e domain.Entity, id int64, reason string) error {
	if err := checkItem(partition, e, id); err != nil {
		return err
	}
	body, err := marshal(itemKey("error", e, id), partition, map[string]any{
		"entity": string(e),
		"id":     aztables.EDMInt64(id),
		"reason": reason,
	})
	if err != nil {
		return err
	}
	if _, err := s.results.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return wrap(err, "record attempt error")
	}
	return nil
}

// AttemptError returns the last recorded attempt error of item (e, id) in
// partition; ok is false if there is none.
func (s *Store) AttemptError(ctx context.Context, partition string, e domain.Entity, id int64) (string, bool, error) {
	if err := checkItem(partition, e, id); err != nil {
		return "", false, err
	}
	resp, err := s.results.GetEntity(ctx, partition, itemKey("error", e, id), nil)
	if err != nil {
		if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
			return "", false, nil
		}
		return "", false, wrap(err, "get attempt error")
	}
	ent, err := unmarshal(resp.Value)
	if err != nil {
		return "", false, err
	}
	return propString(ent.Properties, "reason"), true, nil
}

func itemKey(kind string, e domain.Entity, id int64) string {
	return fmt.Sprintf("%s-%s-%019d", kind, e, id)
}

func shardKey(i int) string { return fmt.Sprintf("count-%02d", i) }

func checkItem(partition string, e domain.Entity, id int64) error {
	if err := checkKey("partition", partition); err != nil {
		return err
	}
	if !e.Valid() {
		return domain.Errorf(domain.KindInvalid, "unknown entity %q", e)
	}
	if id < 0 {
		return domain.Errorf(domain.KindInvalid, "id %d is negative", id)
	}
	return nil
}

// checkKey rejects what Table storage forbids in keys (and the quote, which
// the SDK escapes inconsistently between URL and body).
func checkKey(what, k string) error {
	if k == "" || len(k) > 512 || strings.ContainsAny(k, "/\\#?'") {
		return domain.Errorf(domain.KindInvalid, "%s %q is not a valid table key", what, k)
	}
	for _, r := range k {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return domain.Errorf(domain.KindInvalid, "%s %q is not a valid table key", what, k)
		}
	}
	return nil
}

func marshal(rowKey, partitionKey string, props map[string]any) ([]byte, error) {
	b, err := json.Marshal(aztables.EDMEntity{
		Entity:     aztables.Entity{PartitionKey: partitionKey, RowKey: rowKey},
		Properties: props,
	})
	if err != nil {
		return nil, domain.Wrap(domain.KindInternal, err, "encode table entity")
	}
	return b, nil
}

func unmarshal(b []byte) (aztables.EDMEntity, error) {
	var e aztables.EDMEntity
	if err := json.Unmarshal(b, &e); err != nil {
		return e, domain.Wrap(domain.KindInternal, err, "decode table entity")
	}
	return e, nil
}

// setTime stores t as Edm.DateTime in UTC (the SDK formats a literal "Z"),
// or nothing for the zero time.
func setTime(p map[string]any, name string, t time.Time) {
	if !t.IsZero() {
		p[name] = aztables.EDMDateTime(t.UTC())
	}
}

func propString(p map[string]any, name string) string {
	s, _ := p[name].(string)
	return s
}

func propBool(p map[string]any, name string) bool {
	b, _ := p[name].(bool)
	return b
}

func propInt64(p map[string]any, name string) int64 {
	switch v := p[name].(type) {
	case int32:
		return int64(v)
	case aztables.EDMInt64:
		return int64(v)
	case float64:
		return int64(v)
	case string: // an Int64 whose annotation was lost
		var n int64
		_, _ = fmt.Sscan(v, &n)
		return n
	}
	return 0
}

func propTime(p map[string]any, name string) time.Time {
	switch v := p[name].(type) {
	case aztables.EDMDateTime:
		return time.Time(v).UTC()
	case string:
		t, _ := time.Parse(time.RFC3339Nano, v)
		return t.UTC()
	}
	return time.Time{}
}
