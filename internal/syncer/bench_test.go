package syncer

import (
	"context"
	"testing"
	"time"

	"dualsync/internal/domain"
)

// BenchmarkSyncItem is one run item end to end against real PostgreSQL and
// Azurite: load from both databases, copy the newer row (every other item),
// acknowledge both outboxes, record the outcome with its counter. Profile
// it to see the handler's CPU per synced product:
//
//	go test -run '^$' -bench SyncItem -cpuprofile cpu.out ./internal/syncer
func BenchmarkSyncItem(b *testing.B) {
	e := newEnv(b, Options{})
	ctx := context.Background()
	run := startRun(b, e)
	var id int64
	for b.Loop() {
		b.StopTimer()
		id += 2
		p := product(id+1, "same", t0, false)
		put(b, e.primary, p)
		if id%4 == 0 {
			p.Name, p.UpdatedAt = "newer", t0.Add(time.Second)
		}
		put(b, e.fallback, p)
		b.StartTimer()
		if err := e.eng.SyncItem(ctx, Message{Entity: domain.EntityProduct, ID: p.ID, Run: run}); err != nil {
			b.Fatal(err)
		}
	}
}
