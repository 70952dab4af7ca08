package table

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// Paging reads each partition of a run from a cursor of its own and merges
// them by RowKey, so clients see one stream in id order, exactly as when a
// run had one partition; the continuation token carries every cursor.

// cursor is where paging stands in one partition. A query reads RowKeys
// greater than After; PK and RK are the service's continuation of that
// query (set when it stopped before its end), Done that it reached its end.
type cursor struct {
	After string `json:"a,omitempty"`
	PK    string `json:"pk,omitempty"`
	RK    string `json:"rk,omitempty"`
	Done  bool   `json:"d,omitempty"`
}

// continuation is the opaque token: the query it continues (so it cannot
// be replayed against another run or status) and one cursor per partition.
type continuation struct {
	Partition string   `json:"p"`
	Status    string   `json:"s,omitempty"`
	Cursors   []cursor `json:"c"`
}

// Page rounds: a page reads until it holds limit items, its partitions are
// exhausted, or these bounds; the soft one applies once it has an item. A
// round costs one query per partition that needs more rows.
const (
	softRounds = 4
	hardRounds = 32
	maxToken   = 16 << 10
)

type keyed struct {
	key string
	r   Result
	// detail is the RowKey of the entity beside its bucket that holds a
	// real-time outcome's reason and detail ("" if they are inline).
	detail string
}

// Results returns one page (at most limit, default 100, at most 1000) of the
// result entities of partition (a run id, whose partitions are merged, or a
// real-time partition), in id order, only those with status if it is not
// "". token is "" for the first page and next for the following ones; next
// is "" at the end. A page may be short, but it is never empty while next
// is set, short of hardRounds queries per partition finding nothing (a
// filter that matches nothing in millions of rows).
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
	parts := []string{partition}
	switch {
	case realtimeDay.MatchString(partition):
		parts = realtimeParts(partition)
	case !isRealtime(partition):
		l, err := s.layoutOf(ctx, partition)
		if err != nil {
			return nil, "", err
		}
		parts = l.partitions()
	}
	cur := make([]cursor, len(parts))
	if token != "" {
		c, err := decodeToken(token)
		if err != nil {
			return nil, "", err
		}
		if c.Partition != partition || c.Status != status || len(c.Cursors) != len(parts) {
			return nil, "", domain.Errorf(domain.KindInvalid, "continuation token belongs to another query")
		}
		cur = c.Cursors
	}

	var (
		bufs = make([][]keyed, len(parts))
		out  = make([]Result, 0, limit)
	)
pages:
	for round := 0; ; round++ {
		var need []int
		for i := range parts {
			if len(bufs[i]) == 0 && !cur[i].Done {
				need = append(need, i)
			}
		}
		if len(need) > 0 {
			n := fetchSize(limit-len(out), len(need), len(parts))
			if err := s.fetch(ctx, parts, status, n, need, cur, bufs, token != ""); err != nil {
				return nil, "", err
			}
		}
		out = merge(bufs, cur, out, limit)
		buffered, exhausted := false, true
		for i := range parts {
			buffered = buffered || len(bufs[i]) > 0
			exhausted = exhausted && cur[i].Done && len(bufs[i]) == 0
		}
		switch {
		case exhausted:
			return out, "", nil
		case len(out) == limit && buffered: // the next page has an item for sure
		case round+1 >= hardRounds:
		case len(out) > 0 && round+1 >= softRounds:
		default:
			continue
		}
		break pages
	}
	next := continuation{Partition: partition, Status: status, Cursors: make([]cursor, len(parts))}
	for i, c := range cur {
		if len(bufs[i]) > 0 { // read them again, after what was handed out
			c = cursor{After: c.After}
		}
		next.Cursors[i] = c
	}
	return out, encodeToken(next), nil
}

// fetchSize is how many rows to ask each partition for: its share of what
// the page still needs, with slack for an uneven spread, plus one row of
// look-ahead so a full page knows whether another follows.
func fetchSize(remaining, active, parts int) int32 {
	n := remaining + 1
	if parts > 1 {
		n = remaining/max(active, 1)*5/4 + 2
	}
	return int32(min(max(n, 2), 1000))
}

// fetch reads the next rows of partitions need in parallel into bufs and
// moves their cursors.
func (s *Store) fetch(ctx context.Context, parts []string, status string, n int32, need []int, cur []cursor, bufs [][]keyed, fromToken bool) error {
	var (
		wg   sync.WaitGroup
		errs = make([]error, len(need))
	)
	for j, i := range need {
		wg.Go(func() {
			buckets := bucketPartition.MatchString(parts[i])
			after := cur[i].After
			filter := "PartitionKey eq '" + quote(parts[i]) + "' and RowKey lt 'result.'"
			switch {
			case after == "":
				filter += " and RowKey ge 'result-'"
			case buckets && bucketStart(after) != "":
				// The bucket holding after may hold later items too.
				filter += " and RowKey ge '" + quote(bucketStart(after)) + "'"
			default:
				filter += " and RowKey gt '" + quote(after) + "'"
			}
			switch {
			case status != "" && buckets:
				filter += " and " + flagProperty(status) + " eq true"
			case status != "":
				filter += " and status eq '" + status + "'"
			}
			opts := &aztables.ListEntitiesOptions{Filter: &filter, Top: to.Ptr(n)}
			if cur[i].PK != "" || cur[i].RK != "" {
				opts.NextPartitionKey, opts.NextRowKey = to.Ptr(cur[i].PK), to.Ptr(cur[i].RK)
			}
			page, err := s.results.NewListEntitiesPager(opts).NextPage(ctx)
			if err != nil {
				if fromToken && (hasCode(err, "InvalidInput") || hasCode(err, "OutOfRangeInput")) {
					// The service rejected a cursor we were handed.
					errs[j] = domain.Wrap(domain.KindInvalid, err, "invalid continuation token")
					return
				}
				errs[j] = wrap(err, "list results of "+parts[i])
				return
			}
			for _, raw := range page.Entities {
				e, err := unmarshal(raw)
				if err != nil {
					errs[j] = err
					return
				}
				if buckets {
					bufs[i] = append(bufs[i], bucketFrom(e, status, after)...)
				} else {
					bufs[i] = append(bufs[i], keyed{key: e.RowKey, r: resultFrom(e)})
				}
			}
			if buckets {
				if errs[j] = s.fillApart(ctx, parts[i], bufs[i]); errs[j] != nil {
					return
				}
			}
			if pk, rk := deref(page.NextPartitionKey), deref(page.NextRowKey); pk == "" && rk == "" {
				cur[i] = cursor{After: cur[i].After, Done: true}
			} else {
				cur[i].PK, cur[i].RK = deref(page.NextPartitionKey), deref(page.NextRowKey)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// merge moves buffered rows to out in key order, up to limit, but only
// those no unread row can precede. A key buffered in several partitions (an
// item with real-time outcomes in several of the day's partitions) is
// handed out once, the latest recorded: a partition with an empty buffer that is
// not done blocks everything, and one whose buffer is not its last rows
// bounds the rest by its last buffered key. A partition's After becomes
// the last key handed out: its query goes on from the service's
// continuation, which lies past every buffered row, so the narrower filter
// changes nothing there, and a token can restart it from After alone.
func merge(bufs [][]keyed, cur []cursor, out []Result, limit int) []Result {
	bound, bounded := "", false
	for i, b := range bufs {
		if cur[i].Done {
			continue
		}
		if len(b) == 0 {
			return out
		}
		if k := b[len(b)-1].key; !bounded || k < bound {
			bound, bounded = k, true
		}
	}
	for len(out) < limit {
		best := -1
		for i, b := range bufs {
			if len(b) > 0 && (best < 0 || b[0].key < bufs[best][0].key) {
				best = i
			}
		}
		if best < 0 || bounded && bufs[best][0].key > bound {
			break
		}
		key, r := bufs[best][0].key, bufs[best][0].r
		for i, b := range bufs {
			if len(b) > 0 && b[0].key == key {
				if b[0].r.At.After(r.At) {
					r = b[0].r
				}
				cur[i].After = key
				bufs[i] = b[1:]
			}
		}
		out = append(out, r)
	}
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func encodeToken(c continuation) string {
	b, _ := json.Marshal(c) // strings, bools and slices: cannot fail
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeToken(token string) (continuation, error) {
	var c continuation
	invalid := domain.Errorf(domain.KindInvalid, "invalid continuation token")
	if len(token) > maxToken {
		return c, invalid
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return c, domain.Wrap(domain.KindInvalid, err, "invalid continuation token")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || len(c.Cursors) == 0 {
		return c, invalid
	}
	done := true
	for _, cu := range c.Cursors {
		switch {
		case cu.After != "" && (!strings.HasPrefix(cu.After, "result-") || checkKey("cursor", cu.After) != nil),
			(cu.PK == "") != (cu.RK == ""),
			cu.PK != "" && (!printable(cu.PK) || !printable(cu.RK)),
			cu.Done && cu.PK != "":
			return c, invalid
		}
		done = done && cu.Done
	}
	if done { // nothing left: we never hand out such a token
		return c, invalid
	}
	return c, nil
}

// printable accepts what the service hands out as continuation keys.
func printable(s string) bool {
	if len(s) > 1024 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}
