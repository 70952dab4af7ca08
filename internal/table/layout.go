package table

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"dualsync/internal/domain"
)

// A run's results and counter shards are spread over P partitions of
// SyncResults, because one partition takes at most 2,000 entities/s in Azure
// and each item costs three (docs/scale.md). P is chosen when the run is
// created and stored on the run entity, so a change of the setting never
// moves a run that is under way.
//
//   - P = 1 (and every run created before partitions existed): partition
//     <runID> holds everything, as it always did.
//   - P > 1: partitions <runID>-00 .. <runID>-<P-1> each hold the results,
//     attempt errors and 16 counter shards of the items that hash to them;
//     partition <runID> holds only the plan pages.
const (
	// DefaultPartitions is P for new runs: 8 partitions take about
	// 8 × 2,000 / 3 ≈ 5,300 items/s, so the item queue (2,000 messages/s)
	// stays the first limit even with an uneven hash and 412 retries.
	DefaultPartitions = 8
	// MaxPartitions bounds P: status reads P counter sets in parallel.
	MaxPartitions = 32
)

// mix is SplitMix64's finalizer: ids of one parity (the primary allocates
// odd ids, the fallback even ones) still spread evenly over any P.
func mix(id int64) uint64 {
	z := uint64(id) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// layout is where one run's entities live.
type layout struct {
	run   string
	parts int
}

// partition i of the run's results.
func (l layout) partition(i int) string {
	if l.parts <= 1 {
		return l.run
	}
	return fmt.Sprintf("%s-%02d", l.run, i)
}

func (l layout) partitions() []string {
	out := make([]string, max(l.parts, 1))
	for i := range out {
		out[i] = l.partition(i)
	}
	return out
}

// item returns the partition and counter shard of item id.
func (l layout) item(id int64) (partition, shard string) {
	if l.parts <= 1 {
		return l.run, shardKey(int(id % Shards)) // the layout runs have always had
	}
	h := mix(id)
	return l.partition(int(h % uint64(l.parts))), shardKey(int(h / uint64(l.parts) % Shards))
}

func isRealtime(partition string) bool { return strings.HasPrefix(partition, "realtime-") }

// layoutCache remembers each run's P: it never changes, so entries are
// never stale; the map is emptied when full to stay bounded.
type layoutCache struct {
	mu sync.Mutex
	m  map[string]int
}

const layoutCacheSize = 4096

func (c *layoutCache) get(run string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[run]
	return p, ok
}

func (c *layoutCache) put(run string, parts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= layoutCacheSize {
		c.m = make(map[string]int)
	}
	c.m[run] = parts
}

// layoutOf returns run's layout, reading the run entity the first time a
// Store meets the run (NotFound if there is no such run).
func (s *Store) layoutOf(ctx context.Context, run string) (layout, error) {
	if err := checkKey("run id", run); err != nil {
		return layout{}, err
	}
	if p, ok := s.layouts.get(run); ok {
		return layout{run: run, parts: p}, nil
	}
	r, err := s.GetRun(ctx, run) // caches the layout
	if err != nil {
		return layout{}, err
	}
	return layout{run: run, parts: r.Partitions}, nil
}

// itemPartition is where the attempt errors of item id of partition (a run
// id or a real-time partition) live: beside the item's result. A run that
// does not exist keeps its errors in the partition named.
func (s *Store) itemPartition(ctx context.Context, partition string, id int64) (string, error) {
	if isRealtime(partition) {
		return partition, nil
	}
	l, err := s.layoutOf(ctx, partition)
	if domain.IsKind(err, domain.KindNotFound) {
		return partition, nil
	}
	if err != nil {
		return "", err
	}
	p, _ := l.item(id)
	return p, nil
}
