package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/database"
	"dualsync/internal/store"
	"dualsync/internal/syncer"
	"dualsync/internal/testenv"
)

func TestLoadSettings(t *testing.T) {
	base := map[string]string{"PRIMARY_DATABASE_URL": "postgres://a", "FALLBACK_DATABASE_URL": "postgres://b"}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
		check   func(settings) bool
	}{
		{"defaults", nil, false, func(s settings) bool {
			return s.Port == "8080" && s.ConnectTimeout == 2*time.Second && s.QueryTimeout == 5*time.Second && s.Cooldown == 5*time.Second &&
				s.ResultPartitions == 8 && s.PublishWorkers == 4 && s.PublishBuffer == 1024 && s.PublishDrain == 3*time.Second
		}},
		{"partitions", map[string]string{"SYNC_RESULT_PARTITIONS": "16"}, false, func(s settings) bool { return s.ResultPartitions == 16 }},
		{"partitions out of range", map[string]string{"SYNC_RESULT_PARTITIONS": "33"}, true, nil},
		{"partitions not a number", map[string]string{"SYNC_RESULT_PARTITIONS": "many"}, true, nil},
		{"publisher", map[string]string{"PUBLISH_WORKERS": "8", "PUBLISH_BUFFER": "10", "PUBLISH_DRAIN_TIMEOUT": "1s"}, false,
			func(s settings) bool {
				return s.PublishWorkers == 8 && s.PublishBuffer == 10 && s.PublishDrain == time.Second
			}},
		{"bad worker count", map[string]string{"PUBLISH_WORKERS": "0"}, true, nil},
		{"bad buffer", map[string]string{"PUBLISH_BUFFER": "many"}, true, nil},
		{"overrides", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "9000", "BREAKER_COOLDOWN": "1s", "LOG_LEVEL": "debug"}, false,
			func(s settings) bool {
				return s.Port == "9000" && s.Cooldown == time.Second && s.LogLevel.String() == "DEBUG"
			}},
		{"bad duration", map[string]string{"DB_QUERY_TIMEOUT": "soon"}, true, nil},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, true, nil},
		{"missing url", map[string]string{"PRIMARY_DATABASE_URL": ""}, true, nil},
		{"pool defaults", nil, false, func(s settings) bool {
			return s.PrimaryMaxConns == defaultMaxConns && s.FallbackMaxConns == defaultMaxConns
		}},
		{"pool sizes", map[string]string{"PRIMARY_DB_MAX_CONNS": "3", "FALLBACK_DB_MAX_CONNS": "1"}, false, func(s settings) bool {
			return s.PrimaryMaxConns == 3 && s.FallbackMaxConns == 1
		}},
		{"bad pool size", map[string]string{"FALLBACK_DB_MAX_CONNS": "0"}, true, nil},
		{"bad pool size text", map[string]string{"PRIMARY_DB_MAX_CONNS": "ten"}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			get := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return base[k]
			}
			s, err := loadSettings(get)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.check != nil && !tc.check(s) {
				t.Errorf("settings = %+v", s)
			}
		})
	}
}

// In Azure a Key Vault reference the platform could not resolve stays in the
// setting as literal text; the handler must name that setting, not fail later
// on an "invalid URL".
func TestUnresolvedKeyVaultReference(t *testing.T) {
	ref := "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/fallback-database-url/)"
	tests := []struct {
		name    string
		env     map[string]string
		want    []string // setting names the error must name
		notWant []string
	}{
		{"fallback unresolved", map[string]string{"PRIMARY_DATABASE_URL": "postgres://a", "FALLBACK_DATABASE_URL": ref},
			[]string{"FALLBACK_DATABASE_URL"}, []string{"PRIMARY_DATABASE_URL"}},
		{"both unresolved", map[string]string{"PRIMARY_DATABASE_URL": ref, "FALLBACK_DATABASE_URL": " " + ref},
			[]string{"PRIMARY_DATABASE_URL and FALLBACK_DATABASE_URL"}, nil},
		{"another setting", map[string]string{"PRIMARY_DATABASE_URL": "postgres://a", "FALLBACK_DATABASE_URL": "postgres://b", "DB_QUERY_TIMEOUT": ref},
			[]string{"DB_QUERY_TIMEOUT"}, []string{"DATABASE_URL"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadSettings(func(k string) string { return tc.env[k] })
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, "unresolved Key Vault reference") {
				t.Errorf("error does not say what is wrong: %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not name %s: %v", w, err)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(msg, w) {
					t.Errorf("error names %s, which is fine: %v", w, err)
				}
			}
		})
	}
	// Through run, as the host starts it: the error names the setting.
	err := run(context.Background(), nil, func(k string) string {
		return map[string]string{"PRIMARY_DATABASE_URL": ref, "FALLBACK_DATABASE_URL": "postgres://b"}[k]
	}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "PRIMARY_DATABASE_URL is an unresolved Key Vault reference") {
		t.Fatalf("run: %v", err)
	}
}

func TestMigrateAndSeed(t *testing.T) {
	env := map[string]string{"PRIMARY_DATABASE_URL": testenv.CreateDatabase(t), "FALLBACK_DATABASE_URL": testenv.CreateDatabase(t)}
	for _, cmd := range []string{"migrate", "seed", "seed"} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{cmd}, func(k string) string { return env[k] }, &out, &errb); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, errb.String())
		}
		if strings.Count(out.String(), "done") != 2 {
			t.Errorf("%s output %q", cmd, out.String())
		}
	}
	if err := run(context.Background(), []string{"bogus"}, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("unknown command accepted")
	}
}

// The handler must encode queue messages as the host decodes them.
func TestBase64Messages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	const override = "AzureFunctionsJobHost__extensions__queues__messageEncoding"
	tests := []struct {
		name     string
		hostJSON string
		env      string
		want     bool
		wantErr  bool
	}{
		{"no host.json: the host's default", "", "", true, false},
		{"host.json without queues", write("a.json", `{"version":"2.0"}`), "", true, false},
		{"host.json none", write("b.json", `{"extensions":{"queues":{"messageEncoding":"none"}}}`), "", false, false},
		{"host.json base64", write("c.json", `{"extensions":{"queues":{"messageEncoding":"Base64"}}}`), "", true, false},
		{"setting overrides host.json", write("d.json", `{"extensions":{"queues":{"messageEncoding":"base64"}}}`), "none", false, false},
		{"unknown encoding", write("e.json", `{"extensions":{"queues":{"messageEncoding":"rot13"}}}`), "", false, true},
		{"broken host.json", write("f.json", `{`), "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.hostJSON
			if path == "" {
				path = filepath.Join(dir, "absent.json")
			}
			got, err := base64Messages(func(k string) string {
				if k == override {
					return tt.env
				}
				return ""
			}, path)
			if (err != nil) != tt.wantErr || (err == nil && got != tt.want) {
				t.Errorf("got %v, %v; want %v (error %v)", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// The handler answers writes before their sync messages are sent, and on
// SIGTERM (here: ctx cancelled) it publishes what it still holds before it
// exits: every acknowledged write is then on the queue and marked sent.
func TestShutdownPublishesCommittedWrites(t *testing.T) {
	az := testenv.StartAzurite(t)
	port := testenv.FreePort(t)
	env := map[string]string{
		"PRIMARY_DATABASE_URL":         testenv.CreateDatabase(t),
		"FALLBACK_DATABASE_URL":        testenv.CreateDatabase(t),
		"SyncStorage":                  az.ConnString(),
		"FUNCTIONS_CUSTOMHANDLER_PORT": strconv.Itoa(port),
		"PUBLISH_WORKERS":              "1", // so that changes are still waiting at shutdown
		"PUBLISH_DRAIN_TIMEOUT":        "20s",
	}
	getenv := func(k string) string { return env[k] }
	if err := run(context.Background(), []string{"migrate"}, getenv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var logs lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, getenv, io.Discard, &logs) }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	testenv.WaitFor(t, 30*time.Second, "the handler to listen", func() bool {
		resp, err := http.Get(base + "/api/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})

	const writes = 120
	var wg sync.WaitGroup
	var failed atomic.Int32
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < writes; i += 8 {
				resp, err := http.Post(base+"/api/products", "application/json",
					strings.NewReader(fmt.Sprintf(`{"name":"shutdown %d","price":"1.00"}`, i)))
				if err != nil || resp.StatusCode != http.StatusCreated {
					failed.Add(1)
				}
				if err == nil {
					resp.Body.Close()
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d writes failed", n)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, logs.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the handler did not stop")
	}

	db, err := database.Open(context.Background(), env["PRIMARY_DATABASE_URL"], store.RolePrimary, database.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	far := time.Now().Add(time.Hour)
	// Entries never sent (none was sent 100 years ago).
	pending, err := db.PendingOutbox(context.Background(), far, far.AddDate(-100, 0, 0), 1000)
	if err != nil {
		t.Fatal(err)
	}
	depth, err := db.OutboxDepth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Nothing consumes the queue here, so no entry is acknowledged.
	if depth != writes || len(pending) != 0 {
		t.Errorf("outbox after shutdown: %d entries, %d unsent; want %d, all sent\n%s", depth, len(pending), writes, logs.String())
	}
	qsvc, err := azqueue.NewServiceClientFromConnectionString(az.ConnString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every write's product is in a message (writes that waited together
	// share one), once.
	q := qsvc.NewQueueClient(itemQueue)
	seen := map[int64]int{}
	for {
		n, hide := int32(32), int32(60)
		resp, err := q.DequeueMessages(context.Background(), &azqueue.DequeueMessagesOptions{NumberOfMessages: &n, VisibilityTimeout: &hide})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Messages) == 0 {
			break
		}
		for _, m := range resp.Messages {
			raw, err := base64.StdEncoding.DecodeString(*m.MessageText)
			if err != nil {
				t.Fatal(err)
			}
			var msg syncer.Message
			if err := json.Unmarshal(raw, &msg); err != nil {
				t.Fatal(err)
			}
			for _, id := range msg.Items() {
				seen[id]++
			}
		}
	}
	if len(seen) != writes {
		t.Errorf("messages name %d products, want %d", len(seen), writes)
	}
	for id, k := range seen {
		if k != 1 {
			t.Errorf("product %d in %d messages, want 1", id, k)
		}
	}
}
