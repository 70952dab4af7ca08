package table_test

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/table"
	"dualsync/internal/table/recordertest"
	"dualsync/internal/testenv"
)

// TestRecorderContract runs the recorder contract suite against the Store
// on Azurite, each scenario on tables of its own.
func TestRecorderContract(t *testing.T) {
	conn := testenv.Storage(t)
	recordertest.Run(t, func(t *testing.T) recordertest.Recorder {
		svc, err := aztables.NewServiceClientFromConnectionString(conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		prefix := "c" + testenv.RandomHex(4)
		s := table.New(svc, &table.Options{Prefix: prefix})
		if err := s.Ensure(context.Background()); err != nil {
			t.Fatalf("ensure: %v", err)
		}
		t.Cleanup(func() {
			for _, name := range []string{table.RunsTable, table.ResultsTable} {
				_, _ = svc.DeleteTable(context.Background(), prefix+name, nil)
			}
		})
		return s
	})
}
