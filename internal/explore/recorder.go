package explore

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"dualsync/internal/domain"
	"dualsync/internal/syncer"
	"dualsync/internal/table"
)

// Recorder is an in-memory syncer.Recorder with internal/table's semantics
// for what the engine uses: a run's result is added once with its count (one
// transaction), intents are replaced, plan pages belong to the message that
// recorded them, a range is recorded once with its bulk counts, real-time
// outcomes keep the table's slots. It passes the contract suite the table
// passes (internal/table/recordertest), but for what it answers "not
// reachable in explored histories" (listed there). Fault, if
// set, is asked before and after every write: an error before changes
// nothing, an error after leaves the change in place (a lost answer).
type Recorder struct {
	mu    sync.Mutex
	Fault func(op string, after bool) error
	Clock func() time.Time // the storage service's clock (nil: time.Now)

	seq      int64
	runs     map[string]*runRec
	realtime map[string]map[itemKey]*rtSlots // day partition -> an item's slots
	intents  map[string]map[itemKey]table.Result
	attempts map[string]map[itemKey][]table.Attempt
	attemptN map[string]map[itemKey]int
}

type itemKey struct {
	e  domain.Entity
	id int64
}

type runRec struct {
	run      table.Run
	seq      int64
	deleting bool
	etag     int64
	pages    map[int64]table.PlanPage
	results  map[itemKey]table.Result
	counts   map[string]int64
	ranges   map[int64]table.RangeRecord
	rangesN  int64
	items    int64
	compared int64
	updated  time.Time
}

var _ syncer.Recorder = (*Recorder)(nil)

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{runs: map[string]*runRec{}, realtime: map[string]map[itemKey]*rtSlots{},
		intents: map[string]map[itemKey]table.Result{}, attempts: map[string]map[itemKey][]table.Attempt{},
		attemptN: map[string]map[itemKey]int{}}
}

func (r *Recorder) now() time.Time {
	if r.Clock == nil {
		return time.Now()
	}
	return r.Clock()
}

func unreachable(what string) error {
	return domain.Errorf(domain.KindInternal, "explore recorder: %s is not reachable in explored histories", what)
}

// write runs fn as one storage write of op, under the fault hook.
func (r *Recorder) write(op string, fn func() error) error {
	if r.Fault != nil {
		if err := r.Fault(op, false); err != nil {
			return err
		}
	}
	if err := fn(); err != nil {
		return err
	}
	if r.Fault != nil {
		return r.Fault(op, true)
	}
	return nil
}

func (r *Recorder) read(op string) error {
	if r.Fault != nil {
		return r.Fault(op, false)
	}
	return nil
}

func notFound(format string, a ...any) error { return domain.Errorf(domain.KindNotFound, format, a...) }

func (r *Recorder) CreateRun(ctx context.Context, run table.Run) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.write("CreateRun", func() error {
		if _, ok := r.runs[run.ID]; ok {
			return domain.Errorf(domain.KindConflict, "run %s exists", run.ID)
		}
		r.seq++
		run.Output = ""
		if run.Partitions <= 0 {
			run.Partitions = table.DefaultPartitions // the table's setting when none is given
		}
		// Progress.LastUpdated is the storage's clock of the newest write
		// of the run's counters (here, its creation), not a time the
		// caller chose.
		r.runs[run.ID] = &runRec{run: run, seq: r.seq, pages: map[int64]table.PlanPage{}, results: map[itemKey]table.Result{},
			counts: map[string]int64{}, ranges: map[int64]table.RangeRecord{}, updated: r.now()}
		return nil
	})
}

// get returns a run that exists and is not being deleted.
func (r *Recorder) get(id string) (*runRec, error) {
	rr, ok := r.runs[id]
	if !ok || rr.deleting {
		return nil, notFound("run %s not found", id)
	}
	return rr, nil
}

func (r *Recorder) GetRun(ctx context.Context, id string) (table.Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("GetRun"); err != nil {
		return table.Run{}, err
	}
	rr, err := r.get(id)
	if err != nil {
		return table.Run{}, err
	}
	return cloneRun(rr.run), nil
}

func cloneRun(run table.Run) table.Run {
	run.Counts = maps.Clone(run.Counts)
	return run
}

// sorted lists the live runs newest first (as run ids order them).
func (r *Recorder) sorted() []*runRec {
	var out []*runRec
	for _, rr := range r.runs {
		if !rr.deleting {
			out = append(out, rr)
		}
	}
	slices.SortFunc(out, func(a, b *runRec) int {
		if c := b.run.CreatedTime.Compare(a.run.CreatedTime); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	return out
}

func (r *Recorder) ListRuns(ctx context.Context, limit int) ([]table.Run, error) {
	return r.ListRunsWhere(ctx, table.RunFilter{}, limit)
}

func (r *Recorder) ListRunsWhere(ctx context.Context, f table.RunFilter, limit int) ([]table.Run, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("ListRuns"); err != nil {
		return nil, err
	}
	if f.MinKey != "" || f.MaxKey != "" {
		return nil, unreachable("ListRunsWhere with keys")
	}
	var out []table.Run
	for _, rr := range r.sorted() {
		if len(out) == limit {
			break
		}
		if f.Entity == "" || rr.run.Entity == f.Entity {
			run := cloneRun(rr.run)
			run.Output = "" // ListRuns leaves it out
			out = append(out, run)
		}
	}
	return out, nil
}

// UpdateRun merges the mutable fields, as the table's merge update does:
// properties not sent (no counts, no output, compared 0) keep their values.
func (r *Recorder) UpdateRun(ctx context.Context, run table.Run) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.write("UpdateRun", func() error {
		rr, ok := r.runs[run.ID]
		if !ok {
			return notFound("run %s not found", run.ID)
		}
		cur := &rr.run
		cur.Status, cur.Reason, cur.Total = run.Status, run.Reason, run.Total
		if run.LastUpdatedTime.IsZero() {
			run.LastUpdatedTime = r.now()
		}
		cur.LastUpdatedTime = run.LastUpdatedTime
		if run.Compared > 0 {
			cur.Compared = run.Compared
		}
		if len(run.Counts) > 0 {
			if cur.Counts == nil {
				cur.Counts = map[string]int64{}
			}
			maps.Copy(cur.Counts, run.Counts)
		}
		if run.Output != "" {
			cur.Output = run.Output
		}
		rr.etag++
		return nil
	})
}

func (r *Recorder) GetPlanPage(ctx context.Context, runID string, after int64) (table.PlanPage, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("GetPlanPage"); err != nil {
		return table.PlanPage{}, false, err
	}
	rr, ok := r.runs[runID]
	if !ok {
		return table.PlanPage{}, false, nil
	}
	p, ok := rr.pages[after]
	p.IDs = slices.Clone(p.IDs)
	return p, ok, nil
}

func (r *Recorder) PutPlanPage(ctx context.Context, runID string, p table.PlanPage) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.write("PutPlanPage", func() error {
		rr, ok := r.runs[runID]
		if !ok {
			// The table adds the page to the run's partition even so.
			return unreachable("a plan page of a run that does not exist")
		}
		cur, ok := rr.pages[p.After]
		if !ok {
			p.IDs = slices.Clone(p.IDs)
			rr.pages[p.After] = p
			rr.updated = r.now()
			return nil
		}
		if cur.Owner != p.Owner {
			return domain.Errorf(domain.KindConflict, "plan page after %d of run %s belongs to message %q", p.After, runID, cur.Owner)
		}
		if (cur.Enqueued || !p.Enqueued) && (cur.NextQueued || !p.NextQueued) {
			return nil // nothing advances: the table writes nothing
		}
		rr.updated = r.now()
		cur.Enqueued = cur.Enqueued || p.Enqueued
		cur.NextQueued = cur.NextQueued || p.NextQueued
		rr.pages[p.After] = cur
		return nil
	})
}

func (r *Recorder) RecordRunResult(ctx context.Context, runID string, res table.Result) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var added bool
	err := r.write("RecordRunResult", func() error {
		rr, ok := r.runs[runID]
		if !ok {
			return notFound("run %s has no layout", runID)
		}
		k := itemKey{res.Entity, res.ID}
		if _, ok := rr.results[k]; ok {
			return nil
		}
		if res.At.IsZero() {
			res.At = r.now()
		}
		rr.results[k] = res
		rr.counts[res.Status]++
		rr.updated = r.now()
		added = true
		return nil
	})
	return added, err
}

// rtSlots are a real-time item's records of a day, as internal/table's
// buckets keep them (realtime.go there): its latest outcome by causality,
// its conflict, its failure or wait for the relay.
type rtSlots struct {
	latest, conflict, failed *table.Result
}

// strictlyOlder reports whether v is strictly dominated by w.
func strictlyOlder(v, w domain.Vector) bool { return v != w && w.Dominates(v) }

// apply places outcome res among the slots, as the table's applyOutcome
// does.
func (s *rtSlots) apply(res table.Result) {
	latest, conflict, failed := s.latest, s.conflict, s.failed
	if latest == nil || !(strictlyOlder(res.Ver, latest.Ver) || res.Ver == latest.Ver && res.At.Before(latest.At)) {
		s.latest = &res
	}
	switch {
	case res.Status == table.StatusConflict:
		superseded := func(it *table.Result) bool { return it != nil && strictlyOlder(res.Ver, it.Ver) }
		if !superseded(conflict) && !superseded(latest) {
			s.conflict = &res
		}
	case conflict != nil && strictlyOlder(conflict.Ver, res.Ver):
		s.conflict = nil
	}
	switch {
	case res.Status == table.StatusFailed || res.Status == table.StatusWaiting:
		if failed == nil || !res.At.Before(failed.At) {
			s.failed = &res
		}
	case failed != nil && !res.At.Before(failed.At):
		s.failed = nil
	}
}

// listed is the record an unfiltered read lists: the latest outcome, or
// the failure if that came later.
func (s *rtSlots) listed() (table.Result, bool) {
	switch {
	case s.latest != nil && s.failed != nil && s.failed.At.After(s.latest.At):
		return *s.failed, true
	case s.latest != nil:
		return *s.latest, true
	case s.failed != nil:
		return *s.failed, true
	case s.conflict != nil:
		return *s.conflict, true
	}
	return table.Result{}, false
}

// RecordRealtime records each outcome in its item's slots of the day: the
// latest by causality (one strictly dominated by the recorded one, or
// equal and recorded earlier, never replaces it), the conflict, the
// failure (see rtSlots).
func (r *Recorder) RecordRealtime(ctx context.Context, rs ...table.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.write("RecordRealtime", func() error {
		for _, res := range rs {
			if res.At.IsZero() {
				res.At = r.now()
			}
			res.Retry = 0 // a bucket does not keep it
			day := syncer.RealtimePartition(res.At)
			m := r.realtime[day]
			if m == nil {
				m = map[itemKey]*rtSlots{}
				r.realtime[day] = m
			}
			k := itemKey{res.Entity, res.ID}
			if m[k] == nil {
				m[k] = &rtSlots{}
			}
			m[k].apply(res)
		}
		return nil
	})
}

func (r *Recorder) RecordAttemptError(ctx context.Context, partition string, e domain.Entity, id int64, reason string) error {
	return r.RecordAttempt(ctx, partition, e, id, table.Attempt{Reason: reason})
}

func (r *Recorder) RecordAttempt(ctx context.Context, partition string, e domain.Entity, id int64, a table.Attempt) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if a.At.IsZero() {
		a.At = r.now()
	}
	a.At = a.At.UTC()
	a.Reason = cut(a.Reason, maxReason)
	return r.write("RecordAttempt", func() error {
		k := itemKey{e, id}
		if r.attempts[partition] == nil {
			r.attempts[partition], r.attemptN[partition] = map[itemKey][]table.Attempt{}, map[itemKey]int{}
		}
		h := append(r.attempts[partition][k], a)
		if len(h) > maxHistory {
			h = h[len(h)-maxHistory:]
		}
		r.attempts[partition][k] = h
		r.attemptN[partition][k]++
		return nil
	})
}

// The table keeps an item's newest maxHistory attempts, each reason cut to
// maxReason bytes (attempts.go there).
const (
	maxHistory = 20
	maxReason  = 1000
)

// cut shortens s to at most n bytes, never inside a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	end := n
	for end > 0 && !utf8.RuneStart(s[end]) {
		end--
	}
	return s[:end]
}

func (r *Recorder) AttemptError(ctx context.Context, partition string, e domain.Entity, id int64) (string, bool, error) {
	n, h, err := r.Attempts(ctx, partition, e, id)
	if err != nil || n == 0 {
		return "", false, err
	}
	return h[len(h)-1].Reason, true, nil
}

func (r *Recorder) Attempts(ctx context.Context, partition string, e domain.Entity, id int64) (int, []table.Attempt, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("Attempts"); err != nil {
		return 0, nil, err
	}
	k := itemKey{e, id}
	return r.attemptN[partition][k], slices.Clone(r.attempts[partition][k]), nil
}

func (r *Recorder) RecordIntent(ctx context.Context, partition string, res table.Result) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.write("RecordIntent", func() error {
		if r.intents[partition] == nil {
			r.intents[partition] = map[itemKey]table.Result{}
		}
		res.At = time.Time{}
		r.intents[partition][itemKey{res.Entity, res.ID}] = res
		return nil
	})
}

func (r *Recorder) Intent(ctx context.Context, partition string, e domain.Entity, id int64) (table.Result, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("Intent"); err != nil {
		return table.Result{}, false, err
	}
	res, ok := r.intents[partition][itemKey{e, id}]
	return res, ok, nil
}

// intent is the recorded intent of an item, for the checks.
func (r *Recorder) intent(partition string, e domain.Entity, id int64) (table.Result, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	res, ok := r.intents[partition][itemKey{e, id}]
	return res, ok
}

func (r *Recorder) ReplaceFailed(ctx context.Context, runID string, res table.Result) (bool, error) {
	return false, unreachable("ReplaceFailed (retry rounds)")
}

func (r *Recorder) StartRetry(ctx context.Context, runID string, round int, items int64, now time.Time) (table.Run, error) {
	return table.Run{}, unreachable("StartRetry (retry rounds)")
}

// Retrying counts the run's items with a failed attempt and no outcome.
func (r *Recorder) Retrying(ctx context.Context, runID string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, ok := r.runs[runID]
	if !ok {
		return 0, notFound("run %s not found", runID)
	}
	var n int64
	for k := range r.attemptN[runID] {
		if _, done := rr.results[k]; !done {
			n++
		}
	}
	return n, nil
}

// Item returns the item's recorded outcome: a real-time day's, or a run's.
func (r *Recorder) Item(ctx context.Context, partition string, e domain.Entity, id int64) (table.Result, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("Item"); err != nil {
		return table.Result{}, false, err
	}
	k := itemKey{e, id}
	if s, ok := r.realtime[partition][k]; ok {
		res, ok := s.listed()
		return res, ok, nil
	}
	if rr, ok := r.runs[partition]; ok {
		res, ok := rr.results[k]
		return res, ok, nil
	}
	return table.Result{}, false, nil
}

func (r *Recorder) Progress(ctx context.Context, runID string) (table.Progress, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("Progress"); err != nil {
		return table.Progress{}, err
	}
	rr, ok := r.runs[runID]
	if !ok {
		return table.Progress{}, notFound("run %s not found", runID)
	}
	p := table.Progress{Counts: map[string]int64{}, LastUpdated: rr.updated}
	for _, st := range table.Statuses() {
		p.Counts[st] = 0
	}
	for st, n := range rr.counts {
		p.Counts[st] += n
	}
	p.Counts[table.StatusUnchanged] += rr.compared
	for _, n := range p.Counts {
		p.Done += n
	}
	if p.Counts[table.StatusDiffers] == 0 {
		delete(p.Counts, table.StatusDiffers)
	}
	for _, after := range slices.Sorted(maps.Keys(rr.pages)) {
		pg := rr.pages[after]
		pg.IDs = nil
		p.Pages = append(p.Pages, pg)
	}
	p.Ranges, p.Items, p.Compared = rr.rangesN, rr.items, rr.compared
	return p, nil
}

// Results lists a run's results by key, in pages of at most limit
// (default 100, at most 1000) whose token leads to the rest ("" at the end).
func (r *Recorder) Results(ctx context.Context, partition, status string, limit int, token string) ([]table.Result, string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("Results"); err != nil {
		return nil, "", err
	}
	if strings.HasPrefix(partition, "realtime-") {
		return nil, "", unreachable("real-time results")
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	rr, ok := r.runs[partition]
	if !ok {
		return nil, "", notFound("run %s not found", partition)
	}
	var after *itemKey
	if token != "" {
		k, err := decodeResultsToken(token, partition, status)
		if err != nil {
			return nil, "", err
		}
		after = &k
	}
	var out []table.Result
	for _, k := range sortedKeys(rr.results) {
		if after != nil && compareKeys(k, *after) <= 0 {
			continue
		}
		res := rr.results[k]
		if status != "" && res.Status != status {
			continue
		}
		if len(out) == limit {
			last := out[len(out)-1]
			return out, encodeResultsToken(partition, status, itemKey{last.Entity, last.ID}), nil
		}
		out = append(out, res)
	}
	return out, "", nil
}

// A results token is the query it continues and the last key handed out.
func encodeResultsToken(partition, status string, k itemKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strings.Join([]string{partition, status, string(k.e), strconv.FormatInt(k.id, 10)}, "\x00")))
}

func decodeResultsToken(token, partition, status string) (itemKey, error) {
	bad := domain.Errorf(domain.KindInvalid, "invalid continuation token")
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return itemKey{}, bad
	}
	f := strings.Split(string(b), "\x00")
	if len(f) != 4 {
		return itemKey{}, bad
	}
	if f[0] != partition || f[1] != status {
		return itemKey{}, domain.Errorf(domain.KindInvalid, "continuation token belongs to another query")
	}
	id, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return itemKey{}, bad
	}
	return itemKey{domain.Entity(f[2]), id}, nil
}

func compareKeys(a, b itemKey) int { return cmp.Or(cmp.Compare(a.e, b.e), cmp.Compare(a.id, b.id)) }

func sortedKeys[V any](m map[itemKey]V) []itemKey {
	ks := slices.Collect(maps.Keys(m))
	slices.SortFunc(ks, compareKeys)
	return ks
}

func (r *Recorder) ExpiringRuns(ctx context.Context, before time.Time, after string, limit int) ([]table.ExpiringRun, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("ExpiringRuns"); err != nil {
		return nil, err
	}
	var out []table.ExpiringRun
	for _, rr := range r.runs {
		if rr.run.CreatedTime.Before(before) && rr.run.ID > after {
			out = append(out, table.ExpiringRun{Run: cloneRun(rr.run), Deleting: rr.deleting, ETag: azcore.ETag(fmt.Sprint(rr.etag))})
		}
	}
	slices.SortFunc(out, func(a, b table.ExpiringRun) int { return cmp.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (r *Recorder) MarkRunDeleting(ctx context.Context, id string, etag azcore.ETag, at time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.write("MarkRunDeleting", func() error {
		rr, ok := r.runs[id]
		if !ok {
			return notFound("run %s not found", id)
		}
		if etag != azcore.ETagAny && string(etag) != fmt.Sprint(rr.etag) {
			return domain.Errorf(domain.KindConflict, "run %s changed", id)
		}
		rr.deleting = true
		return nil
	})
}

func (r *Recorder) DeleteRun(ctx context.Context, id string, parts int) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	err := r.write("DeleteRun", func() error {
		if rr, ok := r.runs[id]; ok {
			n = int64(1 + len(rr.pages) + len(rr.results) + len(rr.ranges))
			delete(r.runs, id)
		}
		delete(r.intents, id)
		delete(r.attempts, id)
		delete(r.attemptN, id)
		return nil
	})
	return n, err
}

func (r *Recorder) DeleteRealtimeBefore(ctx context.Context, before time.Time) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	err := r.write("DeleteRealtimeBefore", func() error {
		// Every record of the days before: outcomes, intents, attempts.
		horizon := syncer.RealtimePartition(before)
		old := func(p string) bool { return strings.HasPrefix(p, "realtime-") && p < horizon }
		for day, m := range r.realtime {
			if old(day) {
				n += int64(len(m))
				delete(r.realtime, day)
			}
		}
		for p, m := range r.intents {
			if old(p) {
				n += int64(len(m))
				delete(r.intents, p)
			}
		}
		for p, m := range r.attempts {
			if old(p) {
				n += int64(len(m))
				delete(r.attempts, p)
				delete(r.attemptN, p)
			}
		}
		return nil
	})
	return n, err
}

func (r *Recorder) RecordRange(ctx context.Context, runID string, rg table.RangeRecord) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rg.After < 0 || rg.UpTo <= rg.After || rg.Equal < 0 || rg.Items != rg.Equal+len(rg.Differ) || !slices.IsSorted(rg.Differ) {
		return false, domain.Errorf(domain.KindInvalid, "range (%d, %d] of run %s is inconsistent", rg.After, rg.UpTo, runID)
	}
	var added bool
	err := r.write("RecordRange", func() error {
		rr, ok := r.runs[runID]
		if !ok {
			return notFound("run %s has no layout", runID)
		}
		if _, ok := rr.ranges[rg.After]; ok {
			return nil
		}
		rg.Differ = slices.Clone(rg.Differ)
		rr.ranges[rg.After] = rg
		rr.rangesN++
		rr.items += int64(rg.Items)
		rr.compared += int64(rg.Equal)
		rr.updated = r.now()
		added = true
		return nil
	})
	return added, err
}

func (r *Recorder) GetRange(ctx context.Context, runID string, after int64) (table.RangeRecord, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.read("GetRange"); err != nil {
		return table.RangeRecord{}, false, err
	}
	rr, ok := r.runs[runID]
	if !ok {
		return table.RangeRecord{}, false, notFound("run %s has no layout", runID)
	}
	rg, ok := rr.ranges[after]
	rg.Differ = slices.Clone(rg.Differ)
	return rg, ok, nil
}

func (r *Recorder) MarkRangeDone(ctx context.Context, runID string, after int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.write("MarkRangeDone", func() error {
		rr, ok := r.runs[runID]
		if !ok {
			return notFound("run %s has no layout", runID)
		}
		rg, ok := rr.ranges[after]
		if !ok {
			return notFound("range after %d of run %s not found", after, runID)
		}
		rg.Done = true
		rr.ranges[after] = rg
		return nil
	})
}

// runIDs lists every run recorded, oldest first.
func (r *Recorder) runIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.sorted()
	slices.Reverse(out)
	ids := make([]string, len(out))
	for i, rr := range out {
		ids[i] = rr.run.ID
	}
	return ids
}

// hasResult reports whether a run's item has its outcome recorded.
func (r *Recorder) hasResult(run string, k itemKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr, ok := r.runs[run]
	if !ok {
		return false
	}
	_, ok = rr.results[k]
	return ok
}
