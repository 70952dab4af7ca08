package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/table"
)

// probeOps is how many operations each Azurite probe times, probeWorkers
// at a time.
const (
	probeOps     = 200
	probeWorkers = 8
)

// Azurite keeps queues and tables in in-memory collections that it scans:
// its cost per operation grows with a queue's backlog and a partition's
// size, where Azure's does not. A sync run has both (the planner runs ahead
// of the syncers; a run's results share a partition), so these probes
// measure that growth on its own, to tell it apart from dualsync's.

// probeTable times probeOps entity inserts into partition, which holds the
// results of a completed run, and returns the mean time per insert.
func probeTable(ctx context.Context, tsvc *aztables.ServiceClient, partition string) (time.Duration, error) {
	t := tsvc.NewClient(table.ResultsTable)
	var next atomic.Int64
	start := time.Now()
	err := parallel(probeWorkers, func() error {
		for i := next.Add(1); i <= probeOps; i = next.Add(1) {
			e := fmt.Sprintf(`{"PartitionKey":%q,"RowKey":"probe-%s-%04d","n":1}`, partition, randomHex(4), i)
			if _, err := t.AddEntity(ctx, []byte(e), nil); err != nil {
				return fmt.Errorf("table probe: %w", err)
			}
		}
		return nil
	})
	return time.Since(start) / probeOps, err
}

// probeQueue fills a fresh queue with backlog messages, then times probeOps
// dequeue + delete pairs and returns the mean time per pair.
func probeQueue(ctx context.Context, svc *azqueue.ServiceClient, backlog int) (time.Duration, error) {
	q, drop, err := tempQueue(ctx, svc, "probe")
	if err != nil {
		return 0, err
	}
	defer drop()
	var next atomic.Int64
	if err := parallel(32, func() error {
		for i := next.Add(1); i <= int64(backlog); i = next.Add(1) {
			if _, err := q.EnqueueMessage(ctx, fmt.Sprintf(`{"id":%d}`, i), nil); err != nil {
				return fmt.Errorf("queue probe: %w", err)
			}
		}
		return nil
	}); err != nil {
		return 0, err
	}
	next.Store(0)
	one := int32(1)
	start := time.Now()
	err = parallel(probeWorkers, func() error {
		for next.Add(1) <= probeOps {
			resp, err := q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &one})
			if err != nil {
				return fmt.Errorf("queue probe: %w", err)
			}
			for _, m := range resp.Messages {
				if _, err := q.DeleteMessage(ctx, *m.MessageID, *m.PopReceipt, nil); err != nil {
					return fmt.Errorf("queue probe: %w", err)
				}
			}
		}
		return nil
	})
	return time.Since(start) / probeOps, err
}
