package azconn

import (
	"strings"
	"testing"

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
