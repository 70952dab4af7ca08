package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/jackc/pgx/v5"

	"dualsync/internal/azconn"
	"dualsync/internal/syncer"
	"dualsync/internal/table"
)

// outboxRun is the outbox under a sustained write load through devhost:
// what a write costs the database beyond its row, and how fast sync (and
// the relay) acknowledge the entries.
type outboxRun struct {
	Rate         float64 // writes/s the writers were held to; 0: as fast as they can
	Writers      int
	Load         time.Duration
	M            measurement // the writers' requests
	During       []int64     // depth (both databases) each second of the load
	After        []int64     // each second after it, until 0 or the timeout
	Drained      bool
	DrainTime    time.Duration // from the end of the load to depth 0
	Inserted     int64         // outbox rows written during the load
	RowsPerWrite float64
	CPU          cpuUse // during the load
	// Azurite's mean time per insert into one of the partitions today's
	// real-time outcomes are spread over (probeTable), before the load and
	// after the drain, and the table entities the day holds in all of them.
	RealtimeInsertBefore, RealtimeInsertAfter     time.Duration
	RealtimeEntitiesBefore, RealtimeEntitiesAfter int
}

// outboxSection measures the outbox under load twice: writers as fast as
// they can go, then held together to the rate at which sync acknowledged
// during the first load (what it sustains while writes compete with it).
func (b *bench) outboxSection(ctx context.Context, rep *report) error {
	full, err := b.outboxLoad(ctx, 0)
	if err != nil {
		return err
	}
	rep.Outbox = append(rep.Outbox, full)
	if full.acked() < 1 {
		return nil
	}
	paced, err := b.outboxLoad(ctx, full.acked())
	if err != nil {
		return err
	}
	rep.Outbox = append(rep.Outbox, paced)
	return nil
}

// outboxLoad runs cfg.OutboxWriters writers of POST /api/products through
// devhost (whose queue consumers sync every write) for cfg.OutboxLoad on a
// fresh pair, at most rate writes/s if rate > 0, sampling both outboxes'
// depth every second, then keeps sampling until they are empty.
func (b *bench) outboxLoad(ctx context.Context, rate float64) (*outboxRun, error) {
	b.logf("outbox: %d writers through devhost for %s, rate limit %.0f/s (0: none)", b.cfg.OutboxWriters, b.cfg.OutboxLoad, rate)
	p, err := b.newPair(ctx, b.cfg.Products)
	if err != nil {
		return nil, err
	}
	if b.azurite != nil {
		// A fresh Azurite for each load, in memory: a load records up to
		// 100,000 real-time outcomes, which earlier rows' and loads' would
		// add to (Azurite's cost per entity grows with its partition, where
		// Azure's does not), and on disk Azurite rewrites its whole database
		// as one JSON file every 5 s.
		conn, az, err := b.startAzurite(ctx, fmt.Sprintf("azurite-outbox-%.0f", rate), true)
		if err != nil {
			return nil, err
		}
		defer az.stop()
		prevConn, prevAz := b.cfg.Storage, b.azurite
		b.cfg.Storage, b.azurite = conn, az
		defer func() { b.cfg.Storage, b.azurite = prevConn, prevAz }()
	}
	if err := b.clearQueues(ctx); err != nil {
		return nil, err
	}
	dh, base, err := b.startDevhost(ctx, p)
	if err != nil {
		return nil, err
	}
	defer dh.stop()
	handlerPID, err := childPID(dh.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	ps := procSet{Handler: handlerPID, Host: dh.cmd.Process.Pid, Storage: pidOf(b.azurite)}
	var conns []*pgx.Conn
	for _, u := range []string{p.Primary, p.Fallback} {
		c, err := pgx.Connect(ctx, u)
		if err != nil {
			return nil, err
		}
		defer c.Close(context.WithoutCancel(ctx))
		conns = append(conns, c)
	}
	// A pgx.Conn serves one query at a time: the sampler and the reads
	// below take turns.
	var mu sync.Mutex
	sum := func(q string) (int64, error) {
		mu.Lock()
		defer mu.Unlock()
		var total int64
		for _, c := range conns {
			var n int64
			if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
				return 0, err
			}
			total += n
		}
		return total, nil
	}
	depth := func() (int64, error) { return sum("SELECT count(*) FROM outbox") }
	// The bigserial's sequence counts rows ever inserted, acknowledged or not.
	issued := func() (int64, error) {
		return sum("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM outbox_seq_seq")
	}

	r := &outboxRun{Rate: rate, Writers: b.cfg.OutboxWriters, Load: b.cfg.OutboxLoad}
	tsvc, err := azconn.TableClient(b.storageEnv, "SyncStorage")
	if err != nil {
		return nil, err
	}
	realtime := syncer.RealtimePartition(time.Now())
	if r.RealtimeEntitiesBefore, err = countPartition(ctx, tsvc, realtime); err != nil {
		return nil, err
	}
	// One of the partitions the day's outcome buckets are spread over.
	probed := realtime + "-b00"
	if r.RealtimeInsertBefore, err = probeTable(ctx, tsvc, probed); err != nil {
		return nil, err
	}
	seq0, err := issued()
	if err != nil {
		return nil, err
	}
	stop := make(chan struct{})
	var sampleErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				d, err := depth()
				if err != nil {
					sampleErr = err
					return
				}
				r.During = append(r.During, d)
			}
		}
	})
	c0, t0 := ps.cpu(), time.Now()
	r.M, err = runHeyRate(ctx, func() *http.Request { return jsonReq(http.MethodPost, base+"/api/products", productBody()) }, r.Writers, r.Load, rate)
	r.CPU = ps.cpu().sub(c0)
	r.CPU.Wall = time.Since(t0)
	close(stop)
	wg.Wait()
	if err := errors.Join(err, sampleErr); err != nil {
		return nil, err
	}
	seq1, err := issued()
	if err != nil {
		return nil, err
	}
	r.Inserted = seq1 - seq0
	if ok := r.M.Requests - r.M.Failed; ok > 0 {
		r.RowsPerWrite = float64(r.Inserted) / float64(ok)
	}
	b.logf("outbox: %.0f writes/s, %d rows, depth at the end %d; waiting for it to drain", r.M.RPS, r.Inserted, last(r.During))

	end := time.Now()
	for time.Since(end) < b.cfg.OutboxDrain {
		d, err := depth()
		if err != nil {
			return nil, err
		}
		r.After = append(r.After, d)
		if d == 0 {
			r.Drained, r.DrainTime = true, time.Since(end)
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	if r.RealtimeEntitiesAfter, err = countPartition(ctx, tsvc, realtime); err != nil {
		return nil, err
	}
	if r.RealtimeInsertAfter, err = probeTable(ctx, tsvc, probed); err != nil {
		return nil, err
	}
	b.logf("outbox: drained %v in %s (max depth %d); real-time entities %d -> %d, insert %v -> %v",
		r.Drained, secs(r.DrainTime), r.max(), r.RealtimeEntitiesBefore, r.RealtimeEntitiesAfter, r.RealtimeInsertBefore, r.RealtimeInsertAfter)
	return r, nil
}

// clearQueues empties the app's queues on the bench's storage: messages
// left by an earlier section belong to other databases.
func (b *bench) clearQueues(ctx context.Context) error {
	svc, err := azconn.QueueClient(b.storageEnv, "SyncStorage")
	if err != nil {
		return err
	}
	for _, name := range []string{"sync-plan", "product-sync", "product-sync-poison"} {
		_, _ = svc.NewQueueClient(name).ClearMessages(ctx, nil)
	}
	return nil
}

// storageEnv resolves SyncStorage to the bench's storage for azconn.
func (b *bench) storageEnv(k string) string {
	if k == "SyncStorage" {
		return b.cfg.Storage
	}
	return ""
}

// countPartition counts the entities of one results partition (keys only).
func countPartition(ctx context.Context, tsvc *aztables.ServiceClient, partition string) (int, error) {
	// The day's own partition and the ones its outcomes are spread over
	// (partition-00, -01, ...).
	filter := fmt.Sprintf("PartitionKey ge '%s' and PartitionKey lt '%s.'", partition, partition)
	sel := "RowKey"
	pager := tsvc.NewClient(table.ResultsTable).NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: &sel})
	n := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			var re *azcore.ResponseError
			if errors.As(err, &re) && re.StatusCode == http.StatusNotFound {
				return 0, nil // no results table yet
			}
			return 0, err
		}
		n += len(page.Entities)
	}
	return n, nil
}

func last(s []int64) int64 {
	if len(s) == 0 {
		return 0
	}
	return s[len(s)-1]
}

func (r *outboxRun) max() int64 {
	return max(slices.Max(append([]int64{0}, r.During...)), slices.Max(append([]int64{0}, r.After...)))
}

// p50 is the median depth during the load.
func (r *outboxRun) p50() int64 {
	if len(r.During) == 0 {
		return 0
	}
	s := slices.Clone(r.During)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// growth is how fast the depth still grew over the second half of the load,
// in rows per second: near 0 when sync keeps up with the writers.
func (r *outboxRun) growth() float64 {
	n := len(r.During)
	if n < 4 {
		return 0
	}
	h := n / 2
	return float64(r.During[n-1]-r.During[h-1]) / float64(n-h)
}

// acked is how many entries sync acknowledged per second during the load.
func (r *outboxRun) acked() float64 {
	if len(r.During) == 0 || r.CPU.Wall <= 0 {
		return 0
	}
	return float64(r.Inserted-last(r.During)) / r.CPU.Wall.Seconds()
}

// series shows the depth every step seconds, load then drain.
func (r *outboxRun) series(step int) string {
	var out []string
	for i := step - 1; i < len(r.During); i += step {
		out = append(out, fmt.Sprint(r.During[i]))
	}
	s := fmt.Sprintf("%v", out)
	if len(r.After) > 0 {
		var after []string
		for i := 0; i < len(r.After); i += step {
			after = append(after, fmt.Sprint(r.After[i]))
		}
		if (len(r.After)-1)%step != 0 {
			after = append(after, fmt.Sprint(last(r.After)))
		}
		s += fmt.Sprintf(" | after the load: %v", after)
	}
	return s
}
