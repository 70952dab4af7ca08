package azconn

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDevelopmentStorageMatchesAzurite(t *testing.T) {
	if got, want := DevelopmentStorage, testenv.ConnString(10000, 10001, 10002); got != want {
		t.Fatalf("DevelopmentStorage = %q, want %q", got, want)
	}
}

func TestConnectionString(t *testing.T) {
	custom := "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=a2V5;EndpointSuffix=core.windows.net"
	tests := []struct {
		name, value, want string
		ok                bool
	}{
		{"dev", "UseDevelopmentStorage=true", DevelopmentStorage, true},
		{"dev with spaces and case", " usedevelopmentstorage = TRUE ;", DevelopmentStorage, true},
		{"custom passes through", custom, custom, true},
		{"empty", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ConnectionString(env(map[string]string{"SyncStorage": tt.value}), "SyncStorage")
			if got != tt.want || ok != tt.ok {
				t.Fatalf("got %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestQueueClient(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantURL string // prefix of the service URL; "" means an error is expected
	}{
		{"development storage", map[string]string{"SyncStorage": "UseDevelopmentStorage=true"}, "http://127.0.0.1:10001/devstoreaccount1"},
		{"identity", map[string]string{
			"SyncStorage__queueServiceUri": "https://acct.queue.core.windows.net/",
			"SyncStorage__clientId":        "00000000-0000-0000-0000-000000000001",
		}, "https://acct.queue.core.windows.net"},
		{"missing", map[string]string{"Other": "UseDevelopmentStorage=true"}, ""},
		{"bad connection string", map[string]string{"SyncStorage": "nonsense"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := QueueClient(env(tt.env), "SyncStorage")
			if tt.wantURL == "" {
				if err == nil {
					t.Fatalf("want error, got client %s", c.URL())
				}
				if !strings.Contains(err.Error(), "SyncStorage") || !domain.IsKind(err, domain.KindInternal) {
					t.Fatalf("error %v should name the setting and be Internal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.URL(), tt.wantURL) {
				t.Fatalf("URL %q, want prefix %q", c.URL(), tt.wantURL)
			}
		})
	}
}

func TestTableClient(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		live    bool // round-trip an entity through the client
		wantErr bool
	}{
		{"development storage", map[string]string{"SyncStorage": "UseDevelopmentStorage=true"}, true, false},
		{"explicit connection string", map[string]string{"SyncStorage": testenv.Storage(t)}, true, false},
		{"identity", map[string]string{
			"SyncStorage__tableServiceUri": "https://acct.table.core.windows.net/",
			"SyncStorage__clientId":        "00000000-0000-0000-0000-000000000001",
		}, false, false},
		{"queue uri is not enough", map[string]string{"SyncStorage__queueServiceUri": "https://acct.queue.core.windows.net/"}, false, true},
		{"missing", map[string]string{"Other": "UseDevelopmentStorage=true"}, false, true},
		{"bad connection string", map[string]string{"SyncStorage": "nonsense"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := TableClient(env(tt.env), "SyncStorage")
			if tt.wantErr {
				if err == nil {
					t.Fatal("want error, got a client")
				}
				if !strings.Contains(err.Error(), "SyncStorage") || !domain.IsKind(err, domain.KindInternal) {
					t.Fatalf("error %v should name the setting and be Internal", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c == nil {
				t.Fatal("nil client")
			}
			if !tt.live {
				return
			}
			if tt.env["SyncStorage"] == "UseDevelopmentStorage=true" && testenv.Storage(t) != DevelopmentStorage {
				t.Skip("no Azurite on the default ports")
			}
			roundTrip(t, c)
		})
	}
}

// roundTrip creates a table, writes and reads an entity, and drops the table,
// proving the client signs requests the way Azurite expects.
func roundTrip(t *testing.T, c *aztables.ServiceClient) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := "azconn" + testenv.RandomHex(6)
	if _, err := c.CreateTable(ctx, name, nil); err != nil {
		t.Fatalf("create table: %v", err)
	}
	t.Cleanup(func() { _, _ = c.DeleteTable(context.Background(), name, nil) })
	tc := c.NewClient(name)
	body := []byte(`{"PartitionKey":"p","RowKey":"r","Value":"hello"}`)
	if _, err := tc.AddEntity(ctx, body, nil); err != nil {
		t.Fatalf("add entity: %v", err)
	}
	got, err := tc.GetEntity(ctx, "p", "r", nil)
	if err != nil {
		t.Fatalf("get entity: %v", err)
	}
	if !strings.Contains(string(got.Value), `"hello"`) {
		t.Fatalf("entity %s lacks the written value", got.Value)
	}
}
