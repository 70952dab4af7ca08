package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"dualsync/internal/testenv"
)

// The real handler on its own Azurite: health covers Queue and Table
// Storage, so stopping Azurite turns ok into degraded and the details say
// which service is down; a route that needs Table Storage says so in its
// 503. Starting Azurite again brings health back to ok.
func TestHealthReportsStorage(t *testing.T) {
	az := testenv.StartAzurite(t)
	port := testenv.FreePort(t)
	env := map[string]string{
		"PRIMARY_DATABASE_URL":         testenv.CreateDatabase(t),
		"FALLBACK_DATABASE_URL":        testenv.CreateDatabase(t),
		"SyncStorage":                  az.ConnString(),
		"FUNCTIONS_CUSTOMHANDLER_PORT": strconv.Itoa(port),
	}
	getenv := func(k string) string { return env[k] }
	if err := run(context.Background(), []string{"migrate"}, getenv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs lockedBuffer
	go func() { done <- run(ctx, nil, getenv, io.Discard, &logs) }()
	t.Cleanup(func() { stop(); <-done })
	base := fmt.Sprintf("http://127.0.0.1:%d", port)

	type details struct {
		Status  string `json:"status"`
		Storage map[string]struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
		} `json:"storage"`
		Databases map[string]struct {
			OutboxOldestAgeSeconds *int64 `json:"outboxOldestAgeSeconds"`
		} `json:"databases"`
	}
	get := func(path string, v any) int {
		resp, err := http.Get(base + path)
		if err != nil {
			return 0
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if v != nil {
			if err := json.Unmarshal(b, v); err != nil {
				t.Fatalf("%s: %d %s: %v", path, resp.StatusCode, b, err)
			}
		}
		return resp.StatusCode
	}
	// Queues and tables are created in the background at start-up.
	var d details
	testenv.WaitFor(t, 60*time.Second, "health ok with storage", func() bool {
		d = details{}
		return get("/api/health/details", &d) == http.StatusOK && d.Status == "ok"
	})
	var raw map[string]json.RawMessage
	get("/api/health/details", &raw)
	if d.Storage["queue"].Status != "ok" || d.Storage["table"].Status != "ok" || string(raw["lastNightlyRun"]) != "null" ||
		d.Databases["primary"].OutboxOldestAgeSeconds == nil {
		t.Fatalf("details = %+v (%s), want storage ok, lastNightlyRun null (no nightly run yet), outbox ages", d, raw["lastNightlyRun"])
	}

	az.Stop()
	var anon struct{ Status string }
	testenv.WaitFor(t, 30*time.Second, "the anonymous probe to say degraded", func() bool {
		return get("/api/health", &anon) == http.StatusOK && anon.Status == "degraded"
	})
	d = details{}
	if code := get("/api/health/details", &d); code != http.StatusOK || d.Status != "degraded" {
		t.Fatalf("details with storage down: %d %+v, want 200 degraded", code, d)
	}
	for _, svc := range []struct{ name, says string }{{"queue", "Queue Storage"}, {"table", "Table Storage"}} {
		if s := d.Storage[svc.name]; s.Status != "down" || !strings.HasPrefix(s.Reason, svc.says) {
			t.Errorf("storage %s = %+v, want down, saying %s", svc.name, s, svc.says)
		}
	}
	var p struct{ Detail string }
	if code := get("/api/product-sync", &p); code != http.StatusServiceUnavailable || !strings.Contains(p.Detail, "Table Storage") {
		t.Errorf("list runs with storage down: %d %q, want 503 naming Table Storage", code, p.Detail)
	}
	if strings.Contains(logs.String(), "AccountKey") {
		t.Error("the handler logged the storage key")
	}

	az.Start()
	testenv.WaitFor(t, 60*time.Second, "health ok again", func() bool {
		return get("/api/health", &anon) == http.StatusOK && anon.Status == "ok"
	})
}
