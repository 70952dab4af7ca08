package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/testenv"
)

// Queues wiped while the app runs (a wiped Azurite, a queue deleted by
// hand): devhost creates its trigger and poison queues again, as the Azure
// host creates what it needs, and the handler its own; real-time sync and
// a run both still work, and the run completes rather than stays Running.
func TestAppSurvivesDeletedQueues(t *testing.T) {
	s := startStack(t, nil)
	ctx := context.Background()
	svc, err := azqueue.NewServiceClientFromConnectionString(s.azurite.ConnString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var p apiProduct
	if code, _ := s.call("POST", "/api/products", `{"name":"before","price":"1.00"}`, &p); code != 201 {
		t.Fatalf("create: %d", code)
	}
	waitSynced(t, s, p.ID)

	for _, q := range []string{"product-sync", "product-sync-poison", "sync-plan", "sync-plan-poison"} {
		if _, err := svc.DeleteQueue(ctx, q, nil); err != nil {
			t.Fatalf("delete %s: %v", q, err)
		}
	}
	if code, _ := s.call("POST", "/api/products", `{"name":"after","price":"2.00"}`, &p); code != 201 {
		t.Fatalf("create after the wipe: %d", code)
	}
	waitSynced(t, s, p.ID)
	st := s.waitRun(s.startRun(""), 90*time.Second)
	if st.RuntimeStatus != "Completed" || st.CustomStatus.Total != 2 {
		t.Fatalf("run after the wipe: %+v", st)
	}
	for _, q := range []string{"product-sync", "product-sync-poison", "sync-plan", "sync-plan-poison"} {
		if _, err := svc.NewQueueClient(q).GetProperties(ctx, nil); err != nil {
			t.Errorf("queue %s was not created again: %v", q, err)
		}
	}
	if !strings.Contains(s.log.String(), "was missing (deleted while the host ran): created it again") {
		t.Error("devhost did not say it created a queue again")
	}
}

// waitSynced waits until the fallback has product id as the primary has it.
func waitSynced(t *testing.T, s *stack, id int64) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, "product to reach the fallback", func() bool {
		a, errA := s.primary.GetProduct(context.Background(), id)
		b, errB := s.fallback.GetProduct(context.Background(), id)
		return errA == nil && errB == nil && a.Name == b.Name && a.Price == b.Price
	})
}
