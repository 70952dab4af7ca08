// Package table is the aztables adapter for sync runs and per-item results.
//
// SyncRuns holds one entity per run (PartitionKey "run", RowKey = run id).
// SyncResults holds, per partition, the result entities
// ("result-<entity>-<id>"), the last attempt errors ("error-<entity>-<id>")
// and, for runs, 16 counter shards ("count-00".."count-15"); a run's plan
// pages ("plan-<after>") are in partition <runID>. A run spreads its items
// over P partitions (layout.go); real-time outcomes go to buckets of
// consecutive ids in a day's partitions (realtime.go). Counting happens in
// the same entity-group transaction that adds a result, so a redelivered
// message can never be counted twice; sharding keeps ETag contention low.
package table

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
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
	// StatusDiffers: a verify run found the item different in the two
	// databases (and changed nothing); see ranges.go.
	StatusDiffers = "differs"
	// StatusWaiting: a real-time item whose message spent the queue's
	// retries while its change still waits in an outbox, so the relay will
	// send it again (real-time partitions only; kept in the failure slot,
	// never counted as failed).
	StatusWaiting = "waiting"
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
	// Shards is the number of counter shards in each partition of a run.
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
	case StatusCreated, StatusUpdated, StatusDeleted, StatusUnchanged, StatusConflict, StatusFailed, StatusDiffers, StatusWaiting:
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
	// Partitions is P for the runs this Store creates (default
	// DefaultPartitions, at most MaxPartitions); see layout.go.
	Partitions int
}

// Store reads and writes both tables.
type Store struct {
	svc     *aztables.ServiceClient
	names   [2]string // runs, results
	runs    *aztables.Client
	results *aztables.Client
	parts   int // P of new runs
	layouts layoutCache
	buckets bucketCache // real-time buckets as this Store last saw them (realtime.go)
	// beforeBucketWrite, if set (by tests), runs after a real-time bucket
	// is known and before it is written, to force races between writers.
	beforeBucketWrite func(partition, rowKey string)
	// beforeCount, if set (by tests), runs between reading a counter shard
	// and the transaction that bumps it, to force a counting race.
	beforeCount func(attempt int)
	// beforeRunAdd, if set (by tests), runs after the shards are created and
	// before the run entity is added; an error stands for a storage failure
	// between the two steps.
	beforeRunAdd func() error
}

// New returns a Store on svc's SyncRuns and SyncResults tables.
func New(svc *aztables.ServiceClient, o *Options) *Store {
	var prefix string
	parts := DefaultPartitions
	if o != nil {
		prefix = o.Prefix
		if o.Partitions > 0 {
			parts = min(o.Partitions, MaxPartitions)
		}
	}
	runs, results := prefix+RunsTable, prefix+ResultsTable
	return &Store{svc: svc, names: [2]string{runs, results}, runs: svc.NewClient(runs), results: svc.NewClient(results), parts: parts}
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
	Partitions      int              // P (layout.go); 0 in CreateRun means the Store's setting
	// Output is a completed run's output (JSON), cached so that its status is
	// one point read; "" until cached. ListRuns leaves it out.
	Output string
	// RetryRound counts the retry rounds started on the run (retry.go),
	// RetryTotal the items they sent: the run is complete again once that
	// many retried outcomes are recorded (Progress.Retried).
	RetryRound int
	RetryTotal int64
	// Mode is how the run compares ("full", "diff", "verify"; "" for runs
	// from before modes, which were full). Compared is how many items a
	// diff or verify run counted unchanged in bulk, without a result entity
	// (cached once complete). See ranges.go.
	Mode     string
	Compared int64
	// FinishedTime is when the run's own items were done: set by its first
	// retry round, which moves LastUpdatedTime on. RetryStartedTime is when
	// the latest retry round started. Both zero until a retry.
	FinishedTime     time.Time
	RetryStartedTime time.Time
}

// Output is cached in properties output0, output1, ... of at most
// outputChunk bytes each (a string property holds 64 KiB of UTF-16), and not
// at all beyond maxOutputUnits UTF-16 code units: with the input and reason
// (bounded below) the run entity stays within Azure's 1 MiB (limits.go).
const (
	outputChunk    = 30_000
	maxOutputUnits = 400_000
	// maxInputUnits bounds a run's input (the start request's body, echoed
	// in its status): a longer one is refused, not stored.
	maxInputUnits = 16 << 10
	// maxReasonUnits bounds a run's reason: a longer one is cut.
	maxReasonUnits = 8 << 10
)

// runListSelect is every run property but the cached output.
const runListSelect = "RowKey,name,entity,trigger,input,status,reason,createdTime,lastUpdatedTime,total,partitions,mode,compared," +
	"countCreated,countUpdated,countDeleted,countUnchanged,countConflict,countFailed,countDiffers,retry,retryTotal,finishedTime,retryStartedTime"

// CreateRun creates the run's counter shards, then the run entity, so that
// a run that can be read or listed always has all its shards: a transaction
// cannot span the two tables (nor a run's partitions), and storage can fail
// between any two steps. A failure leaves at most shards of a run that does
// not exist, which nothing reads. A run id that exists is a Conflict.
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
	if n := units(r.Input); n > maxInputUnits {
		return domain.Errorf(domain.KindInvalid, "run %s: an input of %d characters, at most %d", r.ID, n, maxInputUnits)
	}
	if r.Partitions <= 0 {
		r.Partitions = s.parts
	}
	if r.Partitions > MaxPartitions {
		return domain.Errorf(domain.KindInvalid, "run %s: %d partitions, at most %d", r.ID, r.Partitions, MaxPartitions)
	}
	// Every entity this call adds carries its token: an add whose answer
	// was lost and that the SDK retried meets its own entity (409), and the
	// token tells it from another creation of the same id.
	token := newToken()
	r.Output = "" // a new run has none
	props := runProperties(r, true)
	props[opProperty] = token
	body, err := marshal(r.ID, runPartition, props)
	if err != nil {
		return err
	}
	l := layout{run: r.ID, parts: r.Partitions}
	err = s.addAllShards(ctx, l, token)
	if hasCode(err, string(aztables.TableNotFound)) {
		// The handler creates its tables in the background at start; a run
		// started before that finished creates them itself.
		if err := s.Ensure(ctx); err != nil {
			return err
		}
		err = s.addAllShards(ctx, l, token)
	}
	if err != nil {
		return wrap(err, "create counter shards of run "+r.ID)
	}
	if s.beforeRunAdd != nil {
		if err := s.beforeRunAdd(); err != nil {
			return wrap(err, "create run "+r.ID)
		}
	}
	if _, err := s.runs.AddEntity(ctx, body, nil); err != nil {
		if mine, rerr := s.madeBy(ctx, s.runs, runPartition, r.ID, token, err); rerr != nil || !mine {
			return wrap(err, "create run "+r.ID)
		}
	}
	s.layouts.put(r.ID, r.Partitions)
	return nil
}

// opProperty holds the token of the call that last wrote an entity, so
// that a retried write whose first answer was lost recognises its own
// work by content (Azure documents that a request whose answer is lost
// may have been carried out).
const opProperty = "op"

// newToken returns a token unique to one write call.
func newToken() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// madeBy reports whether err, the failure of an add, is a 409 that met the
// entity (partition, row) that this call's token wrote: the add was done.
func (s *Store) madeBy(ctx context.Context, c *aztables.Client, partition, row, token string, err error) (bool, error) {
	if st, code := failure(err); st != 409 && code != string(aztables.EntityAlreadyExists) {
		return false, nil
	}
	resp, gerr := c.GetEntity(ctx, partition, row, nil)
	if gerr != nil {
		return false, gerr
	}
	e, gerr := unmarshal(resp.Value)
	if gerr != nil {
		return false, gerr
	}
	return propString(e.Properties, opProperty) == token, nil
}

// addAllShards adds the counter shards of every partition of l at once.
func (s *Store) addAllShards(ctx context.Context, l layout, token string) error {
	parts := l.partitions()
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(parts))
	)
	for i, part := range parts {
		wg.Go(func() { errs[i] = s.addShards(ctx, part, token) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// addShards adds the 16 zeroed counter shards of one partition in one
// transaction. Add, not upsert: shards that exist belong to a run with this
// id (a Conflict), and must not be reset, unless they carry token: then
// this call added them and only its answer was lost.
func (s *Store) addShards(ctx context.Context, partition, token string) error {
	actions := make([]aztables.TransactionAction, 0, Shards)
	for i := range Shards {
		props := map[string]any{opProperty: token}
		for _, st := range Statuses() {
			p, _ := statusProperty(st)
			props[p] = int32(0)
		}
		b, err := marshal(shardKey(i), partition, props)
		if err != nil {
			return err
		}
		actions = append(actions, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: b})
	}
	if err := checkTxn(actions); err != nil {
		return err
	}
	_, err := s.results.SubmitTransaction(ctx, actions, nil)
	if err != nil {
		// The transaction is atomic: one shard of ours means all 16.
		if mine, rerr := s.madeBy(ctx, s.results, partition, shardKey(0), token, err); rerr == nil && mine {
			return nil
		}
	}
	return err
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
	if deleting(e) { // retention is deleting it (retention.go)
		return Run{}, domain.Errorf(domain.KindNotFound, "run %s is expired and being deleted", id)
	}
	r := runFrom(e)
	s.layouts.put(r.ID, r.Partitions)
	return r, nil
}

// ListRuns returns at most limit runs, newest first (RowKey ascending).
func (s *Store) ListRuns(ctx context.Context, limit int) ([]Run, error) {
	return s.ListRunsWhere(ctx, RunFilter{}, limit)
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
	body, err := marshalRun(r, false)
	if err != nil {
		return err
	}
	if _, err := s.runs.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		return wrap(err, "update run "+r.ID)
	}
	return nil
}

// marshalRun encodes a run entity (all its fields, or the mutable ones),
// its output cached only if the entity stays within Azure's limits and its
// request body within the 1 MiB of JSON that Azurite takes.
func marshalRun(r Run, all bool) ([]byte, error) {
	body, err := marshal(r.ID, runPartition, runProperties(r, all))
	if r.Output != "" && (errors.Is(err, ErrLimit) || err == nil && len(body) > maxEntityBytes) {
		r.Output = ""
		return marshal(r.ID, runPartition, runProperties(r, all))
	}
	return body, err
}

func runProperties(r Run, all bool) map[string]any {
	p := map[string]any{
		"status": r.Status,
		"reason": splitUnits(r.Reason, maxReasonUnits)[0],
		"total":  aztables.EDMInt64(r.Total),
	}
	if all {
		p["name"] = r.Name
		p["entity"] = string(r.Entity)
		p["trigger"] = r.Trigger
		p["input"] = r.Input
		setTime(p, "createdTime", r.CreatedTime)
		p["partitions"] = int32(r.Partitions)
		p["retry"] = int32(r.RetryRound)
		p["retryTotal"] = aztables.EDMInt64(r.RetryTotal)
		if r.Mode != "" {
			p["mode"] = r.Mode
		}
	}
	if r.Compared > 0 {
		p["compared"] = aztables.EDMInt64(r.Compared)
	}
	if !r.FinishedTime.IsZero() {
		setTime(p, "finishedTime", r.FinishedTime)
	}
	if !r.RetryStartedTime.IsZero() {
		setTime(p, "retryStartedTime", r.RetryStartedTime)
	}
	setTime(p, "lastUpdatedTime", r.LastUpdatedTime)
	for st, n := range r.Counts {
		name, _ := statusProperty(st)
		p["count"+name] = aztables.EDMInt64(n)
	}
	if units(r.Output) <= maxOutputUnits {
		for i, chunk := range chunks(r.Output, outputChunk) {
			p[fmt.Sprintf("output%d", i)] = chunk
		}
	}
	return p
}

// chunks cuts s into pieces of at most n bytes (n >= 4: a character), never
// inside a UTF-8 sequence.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > 0 {
		end := min(n, len(s))
		for end < len(s) && end > 0 && !utf8.RuneStart(s[end]) {
			end--
		}
		if end == 0 { // one character longer than n: keep it whole
			_, end = utf8.DecodeRuneInString(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
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
		Partitions:      max(int(propInt64(p, "partitions")), 1), // absent: a run from before partitions
		RetryRound:      int(propInt64(p, "retry")),
		RetryTotal:      propInt64(p, "retryTotal"),
		Mode:            propString(p, "mode"),
		Compared:        propInt64(p, "compared"),
	}
	if _, ok := p["finishedTime"]; ok {
		r.FinishedTime = propTime(p, "finishedTime")
	}
	if _, ok := p["retryStartedTime"]; ok {
		r.RetryStartedTime = propTime(p, "retryStartedTime")
	}
	var out strings.Builder
	for i := 0; ; i++ {
		chunk, ok := p[fmt.Sprintf("output%d", i)].(string)
		if !ok {
			break
		}
		out.WriteString(chunk)
	}
	r.Output = out.String()
	for _, st := range countedStatuses() {
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

// PlanPage records one page of a run's plan. Its plan (IDs, Count, Next,
// Last) is written once, before any of its items is enqueued, and never
// changes after; Owner is the queue message that recorded it, and only that
// message (redelivered) may go on with the page, so a duplicate planner
// message can never start a second chain of pages.
type PlanPage struct {
	After      int64   // ids > After were planned by this page
	Count      int     // how many items it plans (len(IDs) when IDs are known)
	IDs        []int64 // the items, ascending; nil where not read (Progress) or not kept (older pages)
	Next       int64   // the After of the next page (the last id planned)
	Last       bool    // no more pages after this one
	Owner      string  // queue message id of the planner message that owns the page
	Enqueued   bool    // every item message was enqueued
	NextQueued bool    // the next page's message was enqueued
}

func planKey(after int64) string { return fmt.Sprintf("plan-%019d", after) }

// maxIDBytes bounds the encoded ids of one page: an entity holds at most
// 1 MiB, a binary property 64 KiB.
const (
	maxIDBytes   = 960 << 10
	idChunkBytes = 64 << 10
)

// planSelect is what Progress reads of a page: never the ids.
const planSelect = "after,count,next,last,owner,enqueued,nextQueued,Timestamp"

// GetPlanPage reads the plan page of run runID that starts after `after`,
// ids included; ok is false if it has not been recorded.
func (s *Store) GetPlanPage(ctx context.Context, runID string, after int64) (PlanPage, bool, error) {
	p, _, ok, err := s.getPlanPage(ctx, runID, after)
	return p, ok, err
}

func (s *Store) getPlanPage(ctx context.Context, runID string, after int64) (PlanPage, azcore.ETag, bool, error) {
	if err := checkKey("run id", runID); err != nil {
		return PlanPage{}, "", false, err
	}
	if after < 0 {
		return PlanPage{}, "", false, domain.Errorf(domain.KindInvalid, "plan page after %d is negative", after)
	}
	resp, err := s.results.GetEntity(ctx, runID, planKey(after), nil)
	if err != nil {
		if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
			return PlanPage{}, "", false, nil
		}
		return PlanPage{}, "", false, wrap(err, "get plan page of run "+runID)
	}
	e, err := unmarshal(resp.Value)
	if err != nil {
		return PlanPage{}, "", false, err
	}
	p, err := planFrom(e, true)
	return p, resp.ETag, true, err
}

// PutPlanPage records page p of run runID, or, if the page is recorded
// already, advances its progress (Enqueued, NextQueued; never back) when
// p.Owner owns it. The recorded plan is kept as it is: a caller that did not
// create the page reads it back with GetPlanPage. A page owned by another
// message is a Conflict.
func (s *Store) PutPlanPage(ctx context.Context, runID string, p PlanPage) error {
	if err := checkKey("run id", runID); err != nil {
		return err
	}
	if p.After < 0 {
		return domain.Errorf(domain.KindInvalid, "plan page after %d is negative", p.After)
	}
	props, err := planProperties(p)
	if err != nil {
		return err
	}
	body, err := marshal(planKey(p.After), runID, props)
	if err != nil {
		return err
	}
	_, err = s.results.AddEntity(ctx, body, nil)
	if err == nil {
		return nil
	}
	if !domain.IsKind(wrap(err, ""), domain.KindConflict) {
		return wrap(err, "put plan page of run "+runID)
	}
	for attempt := 0; ; attempt++ {
		cur, etag, ok, err := s.getPlanPage(ctx, runID, p.After)
		if err != nil {
			return err
		}
		if !ok { // deleted in between: nothing deletes pages, but do not loop
			return domain.Errorf(domain.KindUnavailable, "plan page after %d of run %s vanished", p.After, runID)
		}
		if cur.Owner != p.Owner {
			return domain.Errorf(domain.KindConflict, "plan page after %d of run %s belongs to message %q", p.After, runID, cur.Owner)
		}
		if (cur.Enqueued || !p.Enqueued) && (cur.NextQueued || !p.NextQueued) {
			return nil
		}
		flags, err := marshal(planKey(p.After), runID, map[string]any{
			"enqueued": cur.Enqueued || p.Enqueued, "nextQueued": cur.NextQueued || p.NextQueued,
		})
		if err != nil {
			return err
		}
		_, err = s.results.UpdateEntity(ctx, flags, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge, IfMatch: &etag})
		if err == nil {
			return nil
		}
		if status, _ := failure(err); status != 412 || attempt >= 5 {
			return wrap(err, "update plan page of run "+runID)
		}
	}
}

func planProperties(p PlanPage) (map[string]any, error) {
	props := map[string]any{
		"after":      aztables.EDMInt64(p.After),
		"count":      int32(p.Count),
		"next":       aztables.EDMInt64(p.Next),
		"last":       p.Last,
		"owner":      p.Owner,
		"enqueued":   p.Enqueued,
		"nextQueued": p.NextQueued,
	}
	if p.IDs == nil {
		return props, nil
	}
	if p.Count != len(p.IDs) {
		return nil, domain.Errorf(domain.KindInvalid, "plan page after %d: count %d but %d ids", p.After, p.Count, len(p.IDs))
	}
	b, err := encodeIDs(p.After, p.IDs)
	if err != nil {
		return nil, err
	}
	for i := 0; i*idChunkBytes < len(b) || i == 0; i++ {
		props[fmt.Sprintf("ids%d", i)] = aztables.EDMBinary(b[i*idChunkBytes : min(len(b), (i+1)*idChunkBytes)])
	}
	return props, nil
}

// encodeIDs writes ascending ids > after as uvarint gaps: about 1–3 bytes
// an id for a page of neighbours, where decimal text would take up to 20.
func encodeIDs(after int64, ids []int64) ([]byte, error) {
	b := make([]byte, 0, 2*len(ids))
	prev := after
	for _, id := range ids {
		if id <= prev {
			return nil, domain.Errorf(domain.KindInvalid, "plan page after %d: ids must ascend past it (%d after %d)", after, id, prev)
		}
		b = binary.AppendUvarint(b, uint64(id-prev))
		prev = id
	}
	if len(b) > maxIDBytes {
		return nil, domain.Errorf(domain.KindInvalid, "plan page after %d: %d ids take %d bytes, more than an entity holds", after, len(ids), len(b))
	}
	return b, nil
}

func decodeIDs(after int64, b []byte, n int) ([]int64, error) {
	ids := make([]int64, 0, n)
	prev := after
	for len(b) > 0 {
		d, k := binary.Uvarint(b)
		if k <= 0 {
			return nil, domain.Errorf(domain.KindInternal, "plan page after %d: corrupt ids", after)
		}
		prev += int64(d)
		ids = append(ids, prev)
		b = b[k:]
	}
	if len(ids) != n {
		return nil, domain.Errorf(domain.KindInternal, "plan page after %d: %d ids recorded, count says %d", after, len(ids), n)
	}
	return ids, nil
}

// planFrom reads a page; withIDs decodes its ids too. A page recorded
// before pages had owners was written after its items were enqueued.
func planFrom(e aztables.EDMEntity, withIDs bool) (PlanPage, error) {
	p := e.Properties
	_, owned := p["owner"]
	page := PlanPage{
		After:      propInt64(p, "after"),
		Count:      int(propInt64(p, "count")),
		Next:       propInt64(p, "next"),
		Last:       propBool(p, "last"),
		Owner:      propString(p, "owner"),
		Enqueued:   propBool(p, "enqueued") || !owned,
		NextQueued: propBool(p, "nextQueued"),
	}
	if !withIDs {
		return page, nil
	}
	var b []byte
	for i := 0; ; i++ {
		chunk, ok := p[fmt.Sprintf("ids%d", i)].(aztables.EDMBinary)
		if !ok {
			if i == 0 {
				return page, nil // no ids kept (an older page)
			}
			break
		}
		b = append(b, chunk...)
	}
	ids, err := decodeIDs(page.After, b, page.Count)
	if err != nil {
		return PlanPage{}, err
	}
	page.IDs = ids
	return page, nil
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

// marshal encodes an entity, long strings split (splitLong), and checks it
// against Azure's limits.
func marshal(rowKey, partitionKey string, props map[string]any) ([]byte, error) {
	splitLong(props)
	if _, err := entitySize(partitionKey, rowKey, props); err != nil {
		return nil, err
	}
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
	joinLong(e.Properties)
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
