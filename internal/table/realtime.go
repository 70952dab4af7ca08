package table

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Real-time outcomes: one per item synced outside a run, listed per UTC
// day as realtime-YYYYMMDD (clients read a day as one partition).
//
// They are recorded in buckets: one entity holds the latest outcome of up
// to realtimeBucket consecutive ids of one entity type, one property per
// id, and each write merges only its own ids' properties into it (Insert
// Or Merge, no read, no ETag). A burst of new rows (consecutive ids) so
// costs a few entities per sync message instead of one per item: in
// Azurite, one Node.js process whose cost is per entity, that cost had set
// the pace of real-time sync under load (docs/scale.md). A bucket lives in
// one of the day's RealtimePartitions bucket partitions,
// realtime-YYYYMMDD-b00 .. -b15, chosen by hashing its first id, so each
// item has one place a day and an unfiltered read lists its latest
// outcome; with ?status= the items whose latest outcome is that status.
//
// Reason and detail (a conflict's three versions can reach tens of KB, an
// entity holds at most 1 MiB) stay in the bucket when short, otherwise in a
// per-item "detail-<entity>-<id>" entity beside it, written in the same
// transaction.
//
// Readers also merge the layouts of earlier releases, one entity per item:
// the day's own partition, then realtime-YYYYMMDD-00 .. -15.
const (
	// RealtimePartitions is how many partitions a day's buckets are spread
	// over (and how many the one-entity-per-item layout used). Fixed:
	// readers of a past day must find its partitions.
	RealtimePartitions = 16
	realtimeBucket     = 64
	// inlineMax is the most bytes of reason and detail an item keeps in its
	// bucket: 64 items stay far below an entity's 1 MiB.
	inlineMax = 512
)

var (
	// realtimeDay matches the name clients read a day's outcomes by.
	realtimeDay     = regexp.MustCompile(`^realtime-\d{8}$`)
	bucketPartition = regexp.MustCompile(`^realtime-\d{8}-b\d{2}$`)
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

// bucketItem is one id's outcome inside a bucket, JSON in property
// "i<id - first>".
type bucketItem struct {
	Status  string    `json:"s"`
	Reason  string    `json:"r,omitempty"`
	Detail  string    `json:"d,omitempty"`
	Version time.Time `json:"v,omitzero"`
	At      time.Time `json:"a"`
	Apart   bool      `json:"x,omitempty"` // reason and detail are in the detail entity
	Tries   int       `json:"n,omitempty"` // failed attempts behind a failed outcome
}

func itemProperty(offset int64) string { return "i" + strconv.FormatInt(offset, 10) }

// flagProperty marks a bucket in which some item had status, so that a
// status filter runs in the service. Flags are only ever set: a bucket
// whose item has moved on is read and its other items dropped.
func flagProperty(status string) string {
	p, _ := statusProperty(status)
	return "has" + p
}

// RecordRealtime records rs as the latest real-time outcomes of their
// items, each in the UTC day of its At (now if zero); nothing is counted. A
// later result of the same item in rs replaces an earlier one. The buckets
// of one partition are written in one entity-group transaction (per 100
// entities), the partitions' transactions together; an error may leave
// some of them recorded, and recording again is harmless.
func (s *Store) RecordRealtime(ctx context.Context, rs ...Result) error {
	type bucket struct {
		partition string
		first     int64
		entity    domain.Entity
		items     map[int64]Result
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
			b = &bucket{partition: part, first: first, entity: r.Entity, items: map[int64]Result{}}
			buckets[k] = b
			order = append(order, b)
		}
		b.items[r.ID] = r
	}

	byPart := map[string][]aztables.TransactionAction{}
	var parts []string
	for _, b := range order {
		props := map[string]any{"entity": string(b.entity), "first": aztables.EDMInt64(b.first)}
		var acts []aztables.TransactionAction
		for _, id := range slices.Sorted(maps.Keys(b.items)) {
			r := b.items[id]
			it := bucketItem{Status: r.Status, Version: r.Version.UTC(), At: r.At.UTC(), Tries: r.Attempts}
			if len(r.Reason)+len(r.Detail) > inlineMax {
				it.Apart = true
				body, err := marshal(itemKey("detail", r.Entity, id), b.partition, resultProperties(r))
				if err != nil {
					return err
				}
				acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertReplace, Entity: body})
			} else {
				it.Reason, it.Detail = r.Reason, r.Detail
			}
			js, err := json.Marshal(it)
			if err != nil {
				return domain.Wrap(domain.KindInternal, err, "encode real-time result")
			}
			props[itemProperty(id-b.first)] = string(js)
			props[flagProperty(r.Status)] = true
		}
		body, err := marshal(itemKey("result", b.entity, b.first), b.partition, props)
		if err != nil {
			return err
		}
		// Details and their bucket share a transaction unless more than 100
		// entities of one partition split them; a reader that finds no
		// detail shows the outcome without its reason and detail.
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeInsertMerge, Entity: body})
		if _, ok := byPart[b.partition]; !ok {
			parts = append(parts, b.partition)
		}
		byPart[b.partition] = append(byPart[b.partition], acts...)
	}
	if len(parts) == 1 && len(byPart[parts[0]]) == 1 {
		_, err := s.results.UpsertEntity(ctx, byPart[parts[0]][0].Entity, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeMerge})
		return wrap(err, "record real-time result")
	}
	var txns [][]aztables.TransactionAction
	for _, p := range parts {
		txns = append(txns, slices.Collect(slices.Chunk(byPart[p], realtimeTxn))...)
	}
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(txns))
	)
	for i, acts := range txns {
		wg.Go(func() {
			_, err := s.results.SubmitTransaction(ctx, acts, nil)
			errs[i] = wrap(err, "record real-time results")
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// realtimeTxn is the most entities one transaction takes (the service's
// limit for an entity group transaction).
const realtimeTxn = 100

// bucketFrom returns the items of bucket entity e in id order: those with
// status only if it is not "", and only those after key after.
func bucketFrom(e aztables.EDMEntity, status, after string) []keyed {
	first := propInt64(e.Properties, "first")
	entity := domain.Entity(propString(e.Properties, "entity"))
	var out []keyed
	for name, v := range e.Properties {
		raw, ok := v.(string)
		if !ok || !strings.HasPrefix(name, "i") {
			continue
		}
		off, err := strconv.ParseInt(name[1:], 10, 64)
		if err != nil || off < 0 || off >= realtimeBucket {
			continue
		}
		var it bucketItem
		if json.Unmarshal([]byte(raw), &it) != nil || status != "" && it.Status != status {
			continue
		}
		id := first + off
		key := itemKey("result", entity, id)
		if after != "" && key <= after {
			continue
		}
		out = append(out, keyed{key: key, apart: it.Apart,
			r: Result{Entity: entity, ID: id, Status: it.Status, Reason: it.Reason, Detail: it.Detail, Version: it.Version, At: it.At, Attempts: it.Tries}})
	}
	slices.SortFunc(out, func(a, b keyed) int { return cmp.Compare(a.r.ID, b.r.ID) })
	return out
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
		if !items[i].apart {
			continue
		}
		wg.Go(func() {
			r := &items[i].r
			resp, err := s.results.GetEntity(ctx, partition, itemKey("detail", r.Entity, r.ID), nil)
			if hasCode(err, string(aztables.ResourceNotFound)) {
				return // its transaction was split and failed: the outcome stands without them
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
