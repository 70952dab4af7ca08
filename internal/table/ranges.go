package table

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Diff and verify runs compare ranges of ids instead of sending a message
// per item. A compared range is recorded as one entity ("range-<after>", in
// the partition of the run that id `after` hashes to) in the same
// entity-group transaction that adds its counts to one of that partition's
// counter shards: the items it found (Items), the identical ones counted
// unchanged in bulk (Unchanged and Compared), and one range (Ranges). A
// redelivered or duplicate range message finds the entity and counts
// nothing again, exactly like RecordRunResult for one item. The range's
// differing ids are kept on it, so that a redelivery after a crash between
// recording and enqueuing re-sends exactly those ids, whatever the
// databases hold by then: each item is then counted once, either in bulk or
// by its own result.

// Shard properties of range counting (Int32, like the status counters).
const (
	rangesProp   = "Ranges"
	itemsProp    = "Items"
	comparedProp = "Compared"
)

// countedStatuses are the statuses whose counters status reads: the
// outcomes of Statuses and a verify run's "differs". Statuses itself stays
// as it was, and Progress reports "differs" only when some item has it, so
// full and diff runs report the counts they always did.
func countedStatuses() []string { return append(Statuses(), StatusDiffers) }

// RangeRecord is one compared range of a run: ids in (After, UpTo].
type RangeRecord struct {
	After, UpTo int64
	Items       int     // ids found in either database
	Equal       int     // identical in both: counted unchanged in bulk
	Differ      []int64 // the other ids, ascending: synced (diff) or reported (verify) one by one
	Done        bool    // every differing id was enqueued (diff) or recorded (verify)
}

func rangeKey(after int64) string { return fmt.Sprintf("range-%019d", after) }

// maxRangeIDs bounds the ids a range records (one entity, 1 MiB; each id
// takes at most 10 bytes as a gap).
const maxRangeIDs = maxIDBytes / 10

// RecordRange records a compared range of run runID and counts it,
// atomically (see above). If the range is recorded already nothing changes
// and recorded is false: the caller goes on from GetRange.
func (s *Store) RecordRange(ctx context.Context, runID string, r RangeRecord) (recorded bool, err error) {
	if err := checkKey("run id", runID); err != nil {
		return false, err
	}
	if r.After < 0 || r.UpTo <= r.After || r.Equal < 0 || r.Items != r.Equal+len(r.Differ) || len(r.Differ) > maxRangeIDs {
		return false, domain.Errorf(domain.KindInvalid, "range (%d, %d] of run %s: %d items, %d equal, %d differing", r.After, r.UpTo, runID, r.Items, r.Equal, len(r.Differ))
	}
	props, err := rangeProperties(r)
	if err != nil {
		return false, err
	}
	l, err := s.layoutOf(ctx, runID)
	if err != nil {
		return false, err
	}
	part, shard := l.item(r.After)
	unchanged, _ := statusProperty(StatusUnchanged)
	return s.addCounted(ctx, "range", runID, part, shard, rangeKey(r.After), props, func(sh map[string]any) map[string]any {
		add := func(prop string, n int) int32 { return int32(propInt64(sh, prop) + int64(n)) }
		return map[string]any{
			unchanged:    add(unchanged, r.Equal),
			comparedProp: add(comparedProp, r.Equal),
			itemsProp:    add(itemsProp, r.Items),
			rangesProp:   add(rangesProp, 1),
		}
	})
}

func rangeProperties(r RangeRecord) (map[string]any, error) {
	p := map[string]any{
		"after": aztables.EDMInt64(r.After),
		"upTo":  aztables.EDMInt64(r.UpTo),
		"items": int32(r.Items),
		"equal": int32(r.Equal),
		"count": int32(len(r.Differ)),
		"done":  r.Done,
		"at":    aztables.EDMDateTime(time.Now().UTC()),
	}
	if !slices.IsSorted(r.Differ) {
		return nil, domain.Errorf(domain.KindInvalid, "range (%d, %d]: differing ids must ascend", r.After, r.UpTo)
	}
	b, err := encodeIDs(r.After, r.Differ)
	if err != nil {
		return nil, err
	}
	for i := 0; i*idChunkBytes < len(b); i++ {
		p[fmt.Sprintf("ids%d", i)] = aztables.EDMBinary(b[i*idChunkBytes : min(len(b), (i+1)*idChunkBytes)])
	}
	return p, nil
}

// GetRange reads the recorded range of run runID that starts after
// `after`; ok is false if it has not been recorded.
func (s *Store) GetRange(ctx context.Context, runID string, after int64) (RangeRecord, bool, error) {
	l, err := s.layoutOf(ctx, runID)
	if err != nil {
		return RangeRecord{}, false, err
	}
	part, _ := l.item(after)
	resp, err := s.results.GetEntity(ctx, part, rangeKey(after), nil)
	if err != nil {
		if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
			return RangeRecord{}, false, nil
		}
		return RangeRecord{}, false, wrap(err, "get range of run "+runID)
	}
	e, err := unmarshal(resp.Value)
	if err != nil {
		return RangeRecord{}, false, err
	}
	p := e.Properties
	r := RangeRecord{
		After: propInt64(p, "after"), UpTo: propInt64(p, "upTo"),
		Items: int(propInt64(p, "items")), Equal: int(propInt64(p, "equal")), Done: propBool(p, "done"),
	}
	var b []byte
	for i := 0; ; i++ {
		chunk, ok := p[fmt.Sprintf("ids%d", i)].(aztables.EDMBinary)
		if !ok {
			break
		}
		b = append(b, chunk...)
	}
	if r.Differ, err = decodeIDs(r.After, b, int(propInt64(p, "count"))); err != nil {
		return RangeRecord{}, false, err
	}
	return r, true, nil
}

// MarkRangeDone records that every differing id of the range was handed on.
func (s *Store) MarkRangeDone(ctx context.Context, runID string, after int64) error {
	l, err := s.layoutOf(ctx, runID)
	if err != nil {
		return err
	}
	part, _ := l.item(after)
	body, err := marshal(rangeKey(after), part, map[string]any{"done": true})
	if err != nil {
		return err
	}
	if _, err := s.results.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeMerge}); err != nil {
		return wrap(err, "mark range of run "+runID+" done")
	}
	return nil
}
