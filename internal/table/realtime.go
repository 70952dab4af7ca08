package table

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Real-time outcomes: one per item synced outside a run, listed per UTC
// day as realtime-YYYYMMDD (clients read a day as one partition).
//
// They are recorded in buckets: one entity holds the outcomes of up to
// realtimeBucket consecutive ids of one entity type, a few properties per
// id. A burst of new rows (consecutive ids) so costs a few entities per
// sync message instead of one per item: in Azurite, one Node.js process
// whose cost is per entity, that cost had set the pace of real-time sync
// under load (docs/scale.md). A bucket lives in one of the day's
// RealtimePartitions bucket partitions, realtime-YYYYMMDD-b00 .. -b15,
// chosen by hashing its first id, so each item has one place a day.
//
// Outcomes are ordered by causality, not by arrival: each carries the
// version vector both databases hold after it (Result.Ver), and messages
// of one item can be recorded out of order (two consumers, a redelivery).
// Each id has up to three slots:
//   - i<off>, its latest outcome: replaced by a new one unless the new one's
//     vector is strictly dominated by the stored one's (or equal and
//     recorded earlier);
//   - c<off>, its conflict: kept, whatever the latest does, until an
//     outcome whose vector strictly dominates the conflict's arrives (a
//     causally later sync of the item); a conflict that such an outcome
//     already superseded is not kept;
//   - f<off>, its failure (vector zero), or its wait for the outbox relay
//     (StatusWaiting): kept until an outcome recorded after it succeeds.
//
// An unfiltered read lists each item once (its latest outcome, or its
// failure if that came later); ?status=s lists the items whose latest
// outcome, conflict or failure has status s. Writers read the bucket,
// decide per item, and write it back guarded by its ETag (Update with
// If-Match, or Add), retrying on 412/409, so concurrent writers of one
// bucket all land and none undoes another. A Store remembers the buckets
// it wrote last (entity and ETag), so a writer that was the bucket's last
// writer writes without reading it first: one request per bucket, as the
// blind Insert Or Merge of earlier releases; writers of one Store take
// turns per bucket instead of failing each other's ETags.
//
// Reason and detail (a conflict's three versions can reach tens of KB)
// stay in the bucket when short, otherwise in an entity beside it
// ("detail-" for the latest slot, "conflict-", "failure-"; RowKey
// <kind>-<entity>-<id>), written in the bucket's transaction, so it always
// matches the slot that names it.
//
// Readers also merge the layouts of earlier releases, one entity per item:
// the day's own partition, then realtime-YYYYMMDD-00 .. -15; and buckets
// they wrote (latest slot only, no vectors: read as zero, which any outcome
// with a vector dominates).
const (
	// RealtimePartitions is how many partitions a day's buckets are spread
	// over (and how many the one-entity-per-item layout used). Fixed:
	// readers of a past day must find its partitions.
	RealtimePartitions = 16
	realtimeBucket     = 64
	// inlineMax is the most bytes of reason and detail an item keeps in its
	// bucket: 64 items × 3 slots stay far below an entity's 1 MiB.
	inlineMax = 512
	// maxBucketAttempts bounds the ETag retries of one bucket write.
	maxBucketAttempts = 60
	// bucketReserve is what a transaction keeps for the bucket entity when
	// it fills up with detail entities (a full bucket is < 512 KiB).
	bucketReserve = 512 << 10
)

// Slot kinds of a bucket item (the first letter of its property).
const (
	slotLatest   = 'i'
	slotConflict = 'c'
	slotFailed   = 'f'
)

var (
	// realtimeDay matches the name clients read a day's outcomes by.
	realtimeDay     = regexp.MustCompile(`^realtime-\d{8}$`)
	bucketPartition = regexp.MustCompile(`^realtime-\d{8}-b\d{2}$`)
	slotName        = regexp.MustCompile(`^[icf]\d{1,2}$`)
)

// RealtimePartition is the name of the real-time outcomes recorded at t.
func RealtimePartition(t time.Time) string { return "realtime-" + t.UTC().Format("20060102") }

// realtimeParts lists every partition of day that may hold outcomes, in
// the order a continuation token's cursors follow.
func realtimeParts(day string) []string {
	parts := append([]string{day}, layout{run: day, parts: RealtimePartitions}.partitions()...)
	for i := range RealtimePartitions {
		parts = append(parts, bucketPartitionName(day, uint64(i)))
	}
	return parts
}

// bucketOf returns the bucket partition of day and the first id of id's
// bucket.
func bucketOf(day string, id int64) (partition string, first int64) {
	first = id - id%realtimeBucket
	return bucketPartitionName(day, mix(first)%RealtimePartitions), first
}

// bucketPartitionName is day's bucket partition i (bucketPartition matches it).
func bucketPartitionName(day string, i uint64) string { return fmt.Sprintf("%s-b%02d", day, i) }

// bucketItem is one outcome inside a bucket, JSON in a slot property.
type bucketItem struct {
	Status  string    `json:"s"`
	Reason  string    `json:"r,omitempty"`
	Detail  string    `json:"d,omitempty"`
	Version time.Time `json:"v,omitzero"`
	At      time.Time `json:"a"`
	Apart   bool      `json:"x,omitempty"` // reason and detail are in the slot's detail entity
	Ver     []int64   `json:"n,omitempty"` // version vector [P, F]; absent: zero
	Tries   int       `json:"t,omitempty"` // failed attempts behind a failed outcome
}

func (it *bucketItem) vector() domain.Vector {
	if len(it.Ver) != 2 {
		return domain.Vector{}
	}
	return domain.Vector{P: it.Ver[0], F: it.Ver[1]}
}

func slotProperty(kind byte, offset int64) string {
	return string(kind) + strconv.FormatInt(offset, 10)
}

// detailKind is the RowKey prefix of the entity holding a slot's reason
// and detail when they are kept apart.
func detailKind(kind byte) string {
	switch kind {
	case slotConflict:
		return "conflict"
	case slotFailed:
		return "failure"
	}
	return "detail"
}

// flagProperty marks a bucket in which some item is listed under status,
// so that a status filter runs in the service. Writers set every flag on
// each write; buckets of earlier releases only ever set them, and a reader
// drops the items that do not match.
func flagProperty(status string) string {
	p, _ := statusProperty(status)
	return "has" + p
}

// strictlyOlder reports whether v is strictly dominated by w: w has seen
// every write v has, and more.
func strictlyOlder(v, w domain.Vector) bool { return v != w && w.Dominates(v) }

// RecordRealtime records rs as real-time outcomes of their items, each in
// the UTC day of its At (now if zero); nothing is counted. Outcomes of one
// item are ordered by Ver (see above), within rs as across calls. Each
// bucket is written in one entity-group transaction with its detail
// entities (more if they pass a transaction's 100 operations or 4 MiB),
// the buckets concurrently; an error may leave some of them recorded, and
// recording again is harmless.
func (s *Store) RecordRealtime(ctx context.Context, rs ...Result) error {
	type bucket struct {
		partition string
		first     int64
		entity    domain.Entity
		items     []Result
	}
	var (
		order   []*bucket
		buckets = map[string]*bucket{} // by partition and first item key
		now     = time.Now()
	)
	for _, r := range rs {
		if r.At.IsZero() {
			r.At = now
		}
		day := RealtimePartition(r.At)
		if err := checkItem(day, r.Entity, r.ID); err != nil {
			return err
		}
		if _, ok := statusProperty(r.Status); !ok {
			return domain.Errorf(domain.KindInvalid, "unknown outcome status %q", r.Status)
		}
		part, first := bucketOf(day, r.ID)
		k := part + "/" + itemKey("result", r.Entity, first)
		b := buckets[k]
		if b == nil {
			b = &bucket{partition: part, first: first, entity: r.Entity}
			buckets[k] = b
			order = append(order, b)
		}
		b.items = append(b.items, r)
	}
	if len(order) == 1 {
		b := order[0]
		return s.writeBucket(ctx, b.partition, b.entity, b.first, b.items)
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(order))
	)
	for i, b := range order {
		wg.Go(func() { errs[i] = s.writeBucket(ctx, b.partition, b.entity, b.first, b.items) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// bucketState is what a Store knows of one bucket entity as it last read
// or wrote it.
type bucketState struct {
	mu sync.Mutex // held by the writer that writes the bucket for all waiting
	// queue holds the writes waiting for mu; its holder takes them all and
	// writes them as one (group commit), so a burst of consecutive ids
	// costs about one request per bucket per round trip, not per item.
	qmu   sync.Mutex
	queue []*bucketWrite

	known  bool // the fields below are the stored entity's
	exists bool
	etag   azcore.ETag
	slots  map[string]string // non-empty slot properties
	names  map[string]bool   // every slot property the entity has (cleared ones are "")
}

// bucketCache holds the states of the buckets a Store wrote last. Bounded:
// a state dropped while in use only costs its writer a 412 and a read.
type bucketCache struct {
	mu sync.Mutex
	m  map[string]*bucketState
}

// bucketCacheSize bounds the states kept (a state holds up to a bucket's
// few KB of slots); real-time writes go to the newest ids' few buckets.
const bucketCacheSize = 256

func (c *bucketCache) get(key string) *bucketState {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*bucketState{}
	}
	st := c.m[key]
	if st == nil {
		if len(c.m) >= bucketCacheSize {
			for k := range c.m { // an arbitrary one
				delete(c.m, k)
				break
			}
		}
		st = &bucketState{}
		c.m[key] = st
	}
	return st
}

// readBucket loads the stored bucket into st.
func (s *Store) readBucket(ctx context.Context, partition, rowKey string, st *bucketState) error {
	st.slots, st.names, st.etag, st.exists = map[string]string{}, map[string]bool{}, "", false
	resp, err := s.results.GetEntity(ctx, partition, rowKey, nil)
	if hasCode(err, string(aztables.ResourceNotFound)) {
		st.known = true
		return nil
	}
	if err != nil {
		return wrap(err, "read real-time bucket")
	}
	e, err := unmarshal(resp.Value)
	if err != nil {
		return err
	}
	for name, v := range e.Properties {
		if str, ok := v.(string); ok && slotName.MatchString(name) {
			st.names[name] = true
			if str != "" {
				st.slots[name] = str
			}
		}
	}
	st.known, st.exists, st.etag = true, true, resp.ETag
	return nil
}

// bucketWrite is one call's items waiting for their bucket.
type bucketWrite struct {
	items []Result
	done  chan error // buffered: written once by the writer that wrote it
}

// writeBucket records items (outcomes of ids first .. first+63) in their
// bucket, together with the items other calls of this Store are waiting to
// write there: the first to hold the bucket writes everything queued, under
// its context, and every waiting call gets that write's error.
func (s *Store) writeBucket(ctx context.Context, partition string, entity domain.Entity, first int64, items []Result) error {
	rowKey := itemKey("result", entity, first)
	st := s.buckets.get(partition + "/" + rowKey)
	w := &bucketWrite{items: items, done: make(chan error, 1)}
	st.qmu.Lock()
	st.queue = append(st.queue, w)
	st.qmu.Unlock()
	st.mu.Lock()
	defer st.mu.Unlock()
	select {
	case err := <-w.done: // an earlier holder wrote it with its own
		return err
	default:
	}
	st.qmu.Lock()
	group := st.queue
	st.queue = nil
	st.qmu.Unlock()
	var all []Result
	for _, g := range group { // in arrival order: a later call's outcome of an item is applied after
		all = append(all, g.items...)
	}
	err := s.writeBucketItems(ctx, partition, rowKey, entity, first, st, all)
	for _, g := range group {
		g.done <- err
	}
	return <-w.done
}

// writeBucketItems writes items to the bucket st: read it (unless this
// Store's last write left it known), decide, write guarded by the ETag,
// again on a lost race. The caller holds st.mu.
func (s *Store) writeBucketItems(ctx context.Context, partition, rowKey string, entity domain.Entity, first int64, st *bucketState, items []Result) error {
	for attempt := 0; len(items) > 0; {
		if !st.known {
			if err := s.readBucket(ctx, partition, rowKey, st); err != nil {
				return err
			}
		}
		if s.beforeBucketWrite != nil {
			s.beforeBucketWrite(partition, rowKey)
		}
		plan, err := planBucket(partition, entity, first, st, items)
		if err != nil {
			return err
		}
		if len(plan.changed) > 0 {
			err = s.submitBucket(ctx, partition, rowKey, entity, first, st, plan)
		}
		if err == nil {
			items = items[plan.n:]
			attempt = 0
			continue
		}
		status, code := failure(err)
		lost := status == http.StatusPreconditionFailed || status == http.StatusConflict || status == http.StatusNotFound ||
			code == string(aztables.UpdateConditionNotSatisfied) || code == string(aztables.EntityAlreadyExists)
		st.known = false
		if !lost || code == string(aztables.TableNotFound) {
			return wrap(err, "record real-time results")
		}
		if attempt++; attempt >= maxBucketAttempts {
			return domain.Errorf(domain.KindUnavailable, "record real-time results: bucket %s/%s stayed contended for %d attempts", partition, rowKey, attempt)
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return wrap(err, "record real-time results")
		}
	}
	return nil
}

// bucketPlan is one write of a bucket: the slots after it, the slot
// properties it changes, the detail entities it writes, and how many of
// the items it covers (the rest go in the next write).
type bucketPlan struct {
	slots   map[string]string
	changed map[string]bool
	details []aztables.TransactionAction
	n       int
}

// planBucket applies items in order to st's slots, as many as fit in one
// transaction.
func planBucket(partition string, entity domain.Entity, first int64, st *bucketState, items []Result) (bucketPlan, error) {
	p := bucketPlan{slots: maps.Clone(st.slots), changed: map[string]bool{}}
	bytes := bucketReserve
	for _, r := range items {
		slots, changed := maps.Clone(p.slots), maps.Clone(p.changed)
		details, err := applyOutcome(partition, entity, first, slots, changed, r)
		if err != nil {
			return p, err
		}
		add := 0
		for _, d := range details {
			add += len(d.Entity) + txnOpOverhead
		}
		if p.n > 0 && (len(p.details)+len(details)+1 > maxTxnOps || bytes+add > maxTxnBytes) {
			break
		}
		p.slots, p.changed, p.details, p.n = slots, changed, append(p.details, details...), p.n+1
		bytes += add
	}
	// A detail named twice (an item's two outcomes in one write): the later wins.
	seen := map[string]bool{}
	for i := len(p.details) - 1; i >= 0; i-- {
		var k struct{ RowKey string }
		_ = json.Unmarshal(p.details[i].Entity, &k)
		if seen[k.RowKey] {
			p.details = slices.Delete(p.details, i, i+1)
		}
		seen[k.RowKey] = true
	}
	return p, nil
}

// applyOutcome decides where outcome r goes among its item's slots
// (updating slots and changed) and returns the detail entities to write.
func applyOutcome(partition string, entity domain.Entity, first int64, slots map[string]string, changed map[string]bool, r Result) ([]aztables.TransactionAction, error) {
	off := r.ID - first
	get := func(kind byte) *bucketItem {
		raw, ok := slots[slotProperty(kind, off)]
		if !ok {
			return nil
		}
		var it bucketItem
		if json.Unmarshal([]byte(raw), &it) != nil {
			return nil
		}
		return &it
	}
	latest, conflict, failed := get(slotLatest), get(slotConflict), get(slotFailed)
	ver := r.Ver
	var details []aztables.TransactionAction
	set := func(kind byte) error {
		it := bucketItem{Status: r.Status, Version: r.Version.UTC(), At: r.At.UTC(), Tries: r.Attempts}
		if ver != (domain.Vector{}) {
			it.Ver = []int64{ver.P, ver.F}
		}
		if len(r.Reason)+len(r.Detail) > inlineMax {
			it.Apart = true
			body, err := marshal(itemKey(detailKind(kind), entity, r.ID), partition, resultProperties(r))
			if err != nil {
				return err
			}
			details = append(details, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: body})
		} else {
			it.Reason, it.Detail = r.Reason, r.Detail
		}
		js, err := json.Marshal(it)
		if err != nil {
			return domain.Wrap(domain.KindInternal, err, "encode real-time result")
		}
		name := slotProperty(kind, off)
		slots[name], changed[name] = string(js), true
		return nil
	}
	clear := func(kind byte) {
		name := slotProperty(kind, off)
		if _, ok := slots[name]; ok {
			delete(slots, name)
			changed[name] = true
		}
	}

	if latest == nil || !(strictlyOlder(ver, latest.vector()) || ver == latest.vector() && r.At.Before(latest.At)) {
		if err := set(slotLatest); err != nil {
			return nil, err
		}
	}
	switch {
	case r.Status == StatusConflict:
		supersededBy := func(it *bucketItem) bool { return it != nil && strictlyOlder(ver, it.vector()) }
		if !supersededBy(conflict) && !supersededBy(latest) {
			if err := set(slotConflict); err != nil {
				return nil, err
			}
		}
	case conflict != nil && strictlyOlder(conflict.vector(), ver):
		clear(slotConflict)
	}
	switch {
	case r.Status == StatusFailed || r.Status == StatusWaiting:
		// Waiting shares the failure slot: the relay's next outcome, a
		// success or a failure for good, replaces it.
		if failed == nil || !r.At.Before(failed.At) {
			if err := set(slotFailed); err != nil {
				return nil, err
			}
		}
	case failed != nil && !r.At.Before(failed.At):
		clear(slotFailed)
	}
	return details, nil
}

// submitBucket writes plan: the bucket's changed slots ("" for a cleared
// one) and every status flag, merged into the entity guarded by st.etag
// (added if it does not exist), in one transaction with the detail
// entities. On success st is the stored entity; its ETag is read from the
// response, and a write whose ETag cannot be read leaves st unknown.
func (s *Store) submitBucket(ctx context.Context, partition, rowKey string, entity domain.Entity, first int64, st *bucketState, plan bucketPlan) error {
	props := map[string]any{"entity": string(entity), "first": aztables.EDMInt64(first)}
	for name := range plan.changed {
		props[name] = plan.slots[name] // "" when cleared
	}
	for _, status := range append(Statuses(), StatusWaiting) {
		props[flagProperty(status)] = false
	}
	for _, raw := range plan.slots {
		var it bucketItem
		if json.Unmarshal([]byte(raw), &it) == nil {
			if _, ok := statusProperty(it.Status); ok {
				props[flagProperty(it.Status)] = true
			}
		}
	}
	// The entity as stored after the merge must fit Azure's limits too.
	whole := maps.Clone(props)
	for name := range st.names {
		if _, ok := whole[name]; !ok {
			whole[name] = plan.slots[name]
		}
	}
	if _, err := entitySize(partition, rowKey, whole); err != nil {
		return err
	}
	body, err := marshal(rowKey, partition, props)
	if err != nil {
		return err
	}
	var etag azcore.ETag
	switch {
	case len(plan.details) == 0 && st.exists:
		resp, err := s.results.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge, IfMatch: &st.etag})
		if err != nil {
			return err
		}
		etag = resp.ETag
	case len(plan.details) == 0:
		resp, err := s.results.AddEntity(ctx, body, nil)
		if err != nil {
			return err
		}
		etag = resp.ETag
	default:
		act := aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: body}
		if st.exists {
			act = aztables.TransactionAction{ActionType: aztables.TransactionTypeUpdateMerge, Entity: body, IfMatch: &st.etag}
		}
		acts := append(slices.Clone(plan.details), act)
		if err := checkTxn(acts); err != nil {
			return err
		}
		var raw *http.Response
		if _, err := s.results.SubmitTransaction(policy.WithCaptureResponse(ctx, &raw), acts, nil); err != nil {
			return err
		}
		etag = lastETag(raw)
	}
	for name := range plan.changed {
		st.names[name] = true
	}
	st.slots, st.exists, st.etag, st.known = plan.slots, true, etag, etag != ""
	return nil
}

// etagHeader finds the ETag headers of a transaction's responses.
var etagHeader = regexp.MustCompile(`(?mi)^ETag:\s*(\S+)\s*$`)

// lastETag is the ETag of the last operation of a transaction (its
// responses come in the order of its operations), or "" if unreadable.
func lastETag(resp *http.Response) azcore.ETag {
	if resp == nil {
		return ""
	}
	body, err := runtime.Payload(resp)
	if err != nil {
		return ""
	}
	m := etagHeader.FindAllSubmatch(body, -1)
	if len(m) == 0 {
		return ""
	}
	return azcore.ETag(m[len(m)-1][1])
}

// bucketFrom returns the items of bucket entity e in id order: those
// listed under status only if it is not "", and only those after key after.
func bucketFrom(e aztables.EDMEntity, status, after string) []keyed {
	first := propInt64(e.Properties, "first")
	entity := domain.Entity(propString(e.Properties, "entity"))
	type slots struct{ latest, conflict, failed *bucketItem }
	byOff := map[int64]*slots{}
	for name, v := range e.Properties {
		raw, ok := v.(string)
		if !ok || raw == "" || !slotName.MatchString(name) {
			continue
		}
		off, err := strconv.ParseInt(name[1:], 10, 64)
		if err != nil || off < 0 || off >= realtimeBucket {
			continue
		}
		var it bucketItem
		if json.Unmarshal([]byte(raw), &it) != nil {
			continue
		}
		sl := byOff[off]
		if sl == nil {
			sl = &slots{}
			byOff[off] = sl
		}
		switch name[0] {
		case slotLatest:
			sl.latest = &it
		case slotConflict:
			sl.conflict = &it
		case slotFailed:
			sl.failed = &it
		}
	}
	var out []keyed
	for off, sl := range byOff {
		id := first + off
		key := itemKey("result", entity, id)
		if after != "" && key <= after {
			continue
		}
		it, kind := listed(sl.latest, sl.conflict, sl.failed, status)
		if it == nil {
			continue
		}
		k := keyed{key: key, r: Result{Entity: entity, ID: id, Status: it.Status, Reason: it.Reason, Detail: it.Detail,
			Version: it.Version, At: it.At, Ver: it.vector(), Attempts: it.Tries}}
		if it.Apart {
			k.detail = itemKey(detailKind(kind), entity, id)
		}
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b keyed) int { return cmp.Compare(a.r.ID, b.r.ID) })
	return out
}

// listed is the slot an item is listed by: unfiltered its latest outcome
// (its failure if that came later); under a status the latest if it has
// that status, else its conflict or failure slot.
func listed(latest, conflict, failed *bucketItem, status string) (*bucketItem, byte) {
	switch {
	case status == "" && latest != nil && failed != nil && failed.At.After(latest.At):
		return failed, slotFailed
	case status == "" && latest != nil:
		return latest, slotLatest
	case status == "" && failed != nil:
		return failed, slotFailed
	case status == "":
		return conflict, slotConflict
	case latest != nil && latest.Status == status:
		return latest, slotLatest
	case status == StatusConflict && conflict != nil:
		return conflict, slotConflict
	case (status == StatusFailed || status == StatusWaiting) && failed != nil && failed.Status == status:
		return failed, slotFailed
	}
	return nil, 0
}

// bucketStart is the RowKey of the bucket holding item key k (a
// "result-<entity>-<id>" cursor), or "" if k is not one.
func bucketStart(k string) string {
	i := strings.LastIndexByte(k, '-')
	if i < 0 || !strings.HasPrefix(k, "result-") {
		return ""
	}
	id, err := strconv.ParseInt(k[i+1:], 10, 64)
	if err != nil || id < 0 {
		return ""
	}
	return itemKey("result", domain.Entity(k[len("result-"):i]), id-id%realtimeBucket)
}

// fillApart reads the reason and detail of the items kept apart from
// their bucket in partition.
func (s *Store) fillApart(ctx context.Context, partition string, items []keyed) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i := range items {
		if items[i].detail == "" {
			continue
		}
		wg.Go(func() {
			r := &items[i].r
			resp, err := s.results.GetEntity(ctx, partition, items[i].detail, nil)
			if hasCode(err, string(aztables.ResourceNotFound)) {
				return // written by an earlier release in a transaction that failed: the outcome stands without them
			}
			if err == nil {
				var e aztables.EDMEntity
				if e, err = unmarshal(resp.Value); err == nil {
					r.Reason, r.Detail = propString(e.Properties, "reason"), propString(e.Properties, "detail")
					return
				}
			}
			mu.Lock()
			errs = append(errs, wrap(err, "read real-time result detail"))
			mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
