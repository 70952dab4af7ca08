package table

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// blindRecord is how earlier releases recorded one real-time outcome: its
// bucket property merged in blind (Insert Or Merge, no read, no ETag). It
// is the baseline the ordered write is measured against.
func (s *Store) blindRecord(ctx context.Context, r Result) error {
	part, first := bucketOf(RealtimePartition(r.At), r.ID)
	js, _ := json.Marshal(bucketItem{Status: r.Status, At: r.At.UTC()})
	body, err := marshal(itemKey("result", r.Entity, first), part, map[string]any{
		"entity": string(r.Entity), "first": aztables.EDMInt64(first),
		slotProperty(slotLatest, r.ID-first): string(js), flagProperty(r.Status): true,
	})
	if err != nil {
		return err
	}
	_, err = s.results.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeMerge})
	return err
}

// BenchmarkRealtimeRecord records real-time outcomes as sync does under a
// write load: one item per call, consecutive new ids (so concurrent calls
// share a bucket), 16 concurrent writers; blind is the earlier releases'
// Insert Or Merge, ordered the ETag-guarded write. Reported per item:
// time and table requests.
//
//	go test ./internal/table -run '^$' -bench RealtimeRecord -benchtime 2000x
func BenchmarkRealtimeRecord(b *testing.B) {
	for _, mode := range []string{"blind", "ordered"} {
		b.Run(mode, func(b *testing.B) {
			var requests atomic.Int64
			cnt := policyFunc(func(req *policy.Request) (*http.Response, error) {
				requests.Add(1)
				return req.Next()
			})
			svc, err := aztables.NewServiceClientFromConnectionString(testenv.Storage(b),
				&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{cnt}}})
			if err != nil {
				b.Fatal(err)
			}
			s := New(svc, &Options{Prefix: "b" + testenv.RandomHex(4)})
			c := context.Background()
			if err := s.Ensure(c); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() {
				for _, name := range s.names {
					_, _ = svc.DeleteTable(context.Background(), name, nil)
				}
			})
			day := time.Date(2001, 1, 1, 12, 0, 0, 0, time.UTC)
			var next atomic.Int64
			requests.Store(0)
			b.SetParallelism(8) // × GOMAXPROCS writers
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					id := next.Add(1)
					r := Result{Entity: domain.EntityProduct, ID: id, Status: StatusCreated, Ver: domain.Vector{P: 1}, At: day}
					var err error
					if mode == "blind" {
						err = s.blindRecord(c, r)
					} else {
						err = s.RecordRealtime(c, r)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(requests.Load())/float64(b.N), "requests/item")
		})
	}
}

type policyFunc func(*policy.Request) (*http.Response, error)

func (f policyFunc) Do(req *policy.Request) (*http.Response, error) { return f(req) }
