// Command handler is the Azure Functions custom handler: it serves the API
// (default), or applies migrations / loads sample data into both databases.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"dualsync/internal/azconn"
	"dualsync/internal/database"
	"dualsync/internal/dbtime"
	"dualsync/internal/failover"
	"dualsync/internal/httpapi"
	"dualsync/internal/ids"
	"dualsync/internal/queue"
	"dualsync/internal/sample"
	"dualsync/internal/store"
	"dualsync/internal/syncer"
	"dualsync/internal/table"
)

// Names shared with function.json (see docs/architecture.md).
const (
	storageSetting = "SyncStorage" // the queue triggers' "connection"
	itemQueue      = "product-sync"
	planQueue      = "sync-plan"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

// settings are read from the environment.
type settings struct {
	PrimaryURL, FallbackURL string
	Port                    string
	ConnectTimeout          time.Duration
	QueryTimeout            time.Duration
	Cooldown                time.Duration
	ResendAfter             time.Duration
	PublishWorkers          int           // concurrent after-commit publishes
	PublishBuffer           int           // changes waiting for a publish; more are left to the relay
	PublishDrain            time.Duration // on SIGTERM, how long to publish what is waiting
	LogLevel                slog.Level
	Base64Messages          bool // host.json extensions.queues.messageEncoding
	// Connection pool caps per database (open = idle); each instance holds
	// its own, so in Azure they are derived from the instance cap (infra).
	PrimaryMaxConns, FallbackMaxConns int32
	ResultPartitions                  int    // Table Storage partitions of a new sync run (docs/scale.md)
	NightlyMode                       string // NightlySyncMode: full, diff (default) or verify
	// CrashPoint (DUALSYNC_CRASH_POINT, tests only) makes the handler exit
	// at that point of a range's first delivery (syncer.CrashAfterRangeRecorded).
	CrashPoint string
	// Operator event thresholds (internal/event): outbox_stale, db_call_slow, relay_backlog.
	OutboxStaleAfter  time.Duration
	DBSlowCall        time.Duration
	RelayBacklogItems int
	// Retention: runs and real-time outcomes kept RunRetention; tombstones
	// purged after TombstoneRetention (0: kept forever).
	RunRetention, TombstoneRetention time.Duration
}

// defaultMaxConns caps each pool below the smallest tier's limits (Azure SQL
// Basic: 30 concurrent requests; PostgreSQL B1ms: about 50 connections).
const defaultMaxConns = 10

// keyVaultRefPrefix starts an app setting the platform has not replaced with
// its Key Vault secret (the secret is missing or the identity cannot read it).
const keyVaultRefPrefix = "@Microsoft.KeyVault("

func loadSettings(getenv func(string) string) (settings, error) {
	var unresolved []string
	getenv = func(get func(string) string) func(string) string {
		return func(name string) string {
			v := get(name)
			if strings.HasPrefix(strings.TrimSpace(v), keyVaultRefPrefix) {
				unresolved = append(unresolved, name)
			}
			return v
		}
	}(getenv)
	s, err := readSettings(getenv)
	if len(unresolved) > 0 {
		// Said first, by name: otherwise the literal reference would fail
		// later as "invalid database URL", pointing nowhere near the cause.
		return s, fmt.Errorf("app setting %s is an unresolved Key Vault reference (%s...)): the platform could not read the secret; "+
			"check that the secret exists and that the app's identity has the Key Vault Secrets User role (docs/deploy.md)",
			strings.Join(unresolved, " and "), keyVaultRefPrefix)
	}
	return s, err
}

func readSettings(getenv func(string) string) (settings, error) {
	s := settings{
		PrimaryURL:  getenv("PRIMARY_DATABASE_URL"),
		FallbackURL: getenv("FALLBACK_DATABASE_URL"),
		Port:        getenv("FUNCTIONS_CUSTOMHANDLER_PORT"),
	}
	if s.PrimaryURL == "" || s.FallbackURL == "" {
		return s, errors.New("PRIMARY_DATABASE_URL and FALLBACK_DATABASE_URL must be set")
	}
	if s.Port == "" {
		s.Port = "8080"
	}
	var err error
	dur := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" || err != nil {
			return def
		}
		d, e := time.ParseDuration(v)
		if e != nil || d <= 0 {
			err = fmt.Errorf("%s=%q is not a positive duration such as 5s", name, v)
			return def
		}
		return d
	}
	s.ConnectTimeout = dur("DB_CONNECT_TIMEOUT", 2*time.Second)
	s.QueryTimeout = dur("DB_QUERY_TIMEOUT", 5*time.Second)
	s.Cooldown = dur("BREAKER_COOLDOWN", 5*time.Second)
	s.ResendAfter = dur("OUTBOX_RESEND_AFTER", 60*time.Second)
	s.PublishDrain = dur("PUBLISH_DRAIN_TIMEOUT", 3*time.Second)
	s.OutboxStaleAfter = dur("OUTBOX_STALE_AFTER", 5*time.Minute)
	s.DBSlowCall = dur("DB_SLOW_CALL", time.Second)
	count := func(name string, def int) int {
		v := getenv(name)
		if v == "" || err != nil {
			return def
		}
		n, e := strconv.ParseInt(v, 10, 32)
		if e != nil || n <= 0 {
			err = fmt.Errorf("%s=%q is not a positive whole number", name, v)
			return def
		}
		return int(n)
	}
	s.PrimaryMaxConns = int32(count("PRIMARY_DB_MAX_CONNS", defaultMaxConns))
	s.FallbackMaxConns = int32(count("FALLBACK_DB_MAX_CONNS", defaultMaxConns))
	s.PublishWorkers = count("PUBLISH_WORKERS", 4)
	s.PublishBuffer = count("PUBLISH_BUFFER", 1024)
	s.RelayBacklogItems = count("RELAY_BACKLOG_ITEMS", 1000)
	if err != nil {
		return s, err
	}
	s.ResultPartitions = table.DefaultPartitions
	if v := getenv("SYNC_RESULT_PARTITIONS"); v != "" {
		n, e := strconv.Atoi(v)
		if e != nil || n < 1 || n > table.MaxPartitions {
			return s, fmt.Errorf("SYNC_RESULT_PARTITIONS=%q is not an integer from 1 to %d", v, table.MaxPartitions)
		}
		s.ResultPartitions = n
	}
	if s.RunRetention, err = retention(getenv, "RUN_RETENTION", syncer.DefaultRunRetention); err != nil {
		return s, err
	}
	if s.TombstoneRetention, err = retention(getenv, "TOMBSTONE_RETENTION", 0); err != nil {
		return s, err
	}
	s.NightlyMode = syncer.ModeDiff
	if v := getenv("NightlySyncMode"); v != "" {
		if !syncer.ValidMode(v) {
			return s, fmt.Errorf("NightlySyncMode=%q: use full, diff or verify", v)
		}
		s.NightlyMode = v
	}
	s.CrashPoint = getenv("DUALSYNC_CRASH_POINT")
	if s.Base64Messages, err = base64Messages(getenv, "host.json"); err != nil {
		return s, err
	}
	if v := getenv("LOG_LEVEL"); v != "" {
		if e := s.LogLevel.UnmarshalText([]byte(v)); e != nil {
			return s, fmt.Errorf("LOG_LEVEL=%q: use debug, info, warn or error", v)
		}
	}
	return s, nil
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cmd, getenv, err := command(args, getenv, stdout, stderr)
	if err != nil || cmd == "" {
		return err
	}
	s, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: s.LogLevel}))

	primary, err := database.Open(ctx, s.PrimaryURL, store.RolePrimary,
		database.Options{ConnectTimeout: s.ConnectTimeout, MaxConns: s.PrimaryMaxConns})
	if err != nil {
		return fmt.Errorf("primary database: %w", err)
	}
	defer primary.Close()
	fallback, err := database.Open(ctx, s.FallbackURL, store.RoleFallback,
		database.Options{ConnectTimeout: s.ConnectTimeout, MaxConns: s.FallbackMaxConns})
	if err != nil {
		return fmt.Errorf("fallback database: %w", err)
	}
	defer fallback.Close()

	switch cmd {
	case "serve":
		return serve(ctx, s, getenv, log, primary, fallback)
	case "migrate", "seed":
		for _, db := range []store.DB{primary, fallback} {
			if err := db.Migrate(ctx); err != nil {
				return fmt.Errorf("migrate %s: %w", db.Role(), err)
			}
			if cmd == "seed" {
				if err := sample.Load(ctx, db); err != nil {
					return fmt.Errorf("seed %s: %w", db.Role(), err)
				}
			}
			fmt.Fprintf(stdout, "%s (%s): %s done\n", db.Role(), db.Driver(), cmd)
		}
		// A restored or rebuilt database must not hand out ids the other
		// still holds; serve checks again before each database's first
		// create, so a database that does not answer now is only a warning.
		for _, pair := range [][2]store.DB{{primary, fallback}, {fallback, primary}} {
			if err := ids.Check(ctx, pair[0], pair[1]); err != nil {
				fmt.Fprintf(stdout, "%s: ids not checked against the %s (%v); the handler checks before its first create\n", pair[0].Role(), pair[1].Role(), err)
				continue
			}
			fmt.Fprintf(stdout, "%s: sequences past every id of its parity in both databases\n", pair[0].Role())
		}
		return nil
	default:
		return fmt.Errorf("unknown command %q", cmd) // command() let it through
	}
}

func serve(ctx context.Context, s settings, getenv func(string) string, log *slog.Logger, primary, fallback store.DB) error {
	// Every database call, API and sync alike, is timed (event db_call_slow).
	primary = dbtime.Wrap(primary, dbtime.Options{Threshold: s.DBSlowCall, Logger: log})
	fallback = dbtime.Wrap(fallback, dbtime.Options{Threshold: s.DBSlowCall, Logger: log})
	qsvc, err := azconn.QueueClient(getenv, storageSetting)
	if err != nil {
		return err
	}
	tsvc, err := azconn.TableClient(getenv, storageSetting)
	if err != nil {
		return err
	}
	items := queue.New(qsvc, itemQueue, s.Base64Messages)
	plans := queue.New(qsvc, planQueue, s.Base64Messages)
	results := table.New(tsvc, &table.Options{Partitions: s.ResultPartitions})
	go ensureStorage(ctx, log, items.Ensure, plans.Ensure, results.Ensure)

	eng := syncer.New(primary, fallback, items, plans, results, syncer.Options{Logger: log, ResendAfter: s.ResendAfter,
		OutboxStaleAfter: s.OutboxStaleAfter, RelayBacklogItems: s.RelayBacklogItems,
		RunRetention: s.RunRetention, TombstoneRetention: s.TombstoneRetention,
		NightlyMode: s.NightlyMode, CrashPoint: crashPoint(log, s.CrashPoint)})
	// Writes answer once committed; the publisher enqueues their sync
	// messages in the background (the outbox relay sends what it cannot).
	pub := syncer.NewPublisher(syncer.PublisherOptions{Publish: eng.Publish, Workers: s.PublishWorkers, Buffer: s.PublishBuffer, Logger: log})
	// Creates on a database wait until its ids are checked against the
	// other one (a restore or rebuild must not reuse an id): at once in the
	// background, and again on a create while the other does not answer.
	guardP := ids.NewGuard(primary, fallback, ids.Options{Logger: log})
	guardF := ids.NewGuard(fallback, primary, ids.Options{Logger: log})
	go guardP.Run(ctx, 5*time.Second)
	go guardF.Run(ctx, 5*time.Second)
	// Each database's history is checked against the latest mark of it the
	// other holds, now and every minute: one that went back in time gets
	// repair runs (what it lost has no outbox entry to bring it back).
	go eng.WatchDatabases(ctx, syncer.CheckEvery)
	fo := failover.New(guardP, guardF, failover.Options{
		QueryTimeout: s.QueryTimeout, Cooldown: s.Cooldown, Logger: log, OnChange: pub.OnChange,
	})
	go fo.Watch(ctx) // failback without waiting for API traffic
	srv := &http.Server{
		Handler: httpapi.NewServer(log, fo, fo, eng,
			httpapi.WithStorage(
				httpapi.StorageCheck{Name: "queue", Check: func(ctx context.Context) error {
					_, err := items.Client().GetProperties(ctx, nil)
					return err
				}},
				httpapi.StorageCheck{Name: "table", Check: func(ctx context.Context) error {
					_, err := results.ListRuns(ctx, 1)
					return err
				}}),
			httpapi.WithNightly(eng.LastNightly)),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", s.Port))
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		pub.Close(s.PublishDrain)
		return err
	case <-ctx.Done():
	}
	// Stopping (SIGTERM: the host shutting down or scaling in): finish the
	// requests in flight, then publish what they committed, both bounded.
	// What the publisher cannot send in time stays in the outbox.
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx)
	if left := pub.Close(s.PublishDrain); left > 0 {
		log.Warn("stopped with changes not yet published; the outbox relay will send them", "changes", left)
	}
	if err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// ensureStorage creates the queues and tables the handler writes to,
// retrying in the background: the API must start, and serve, while storage
// is down (changes wait in the outbox meanwhile).
func ensureStorage(ctx context.Context, log *slog.Logger, ensure ...func(context.Context) error) {
	for wait := 500 * time.Millisecond; ; wait = min(2*wait, 30*time.Second) {
		var err error
		for _, fn := range ensure {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = errors.Join(err, fn(c))
			cancel()
		}
		if err == nil {
			return
		}
		log.Warn("storage not ready; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// base64Messages reads the queue message encoding as the Functions host
// does: host.json extensions.queues.messageEncoding (default base64),
// overridden by the AzureFunctionsJobHost__ setting, so the handler's
// messages always decode in the host.
func base64Messages(getenv func(string) string, hostJSON string) (bool, error) {
	enc := getenv("AzureFunctionsJobHost__extensions__queues__messageEncoding")
	if enc == "" {
		b, err := os.ReadFile(hostJSON)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return false, fmt.Errorf("read %s: %w", hostJSON, err)
		default:
			var h struct {
				Extensions struct {
					Queues struct {
						MessageEncoding string `json:"messageEncoding"`
					} `json:"queues"`
				} `json:"extensions"`
			}
			if err := json.Unmarshal(b, &h); err != nil {
				return false, fmt.Errorf("%s: %w", hostJSON, err)
			}
			enc = h.Extensions.Queues.MessageEncoding
		}
	}
	switch strings.ToLower(enc) {
	case "", "base64":
		return true, nil
	case "none":
		return false, nil
	default:
		return false, fmt.Errorf("queue messageEncoding %q: use base64 or none", enc)
	}
}

// crashPoint returns the fault injection DUALSYNC_CRASH_POINT asks for: the
// process exits at that point of a range message's first delivery, as if
// killed, so tests can prove that the redelivery counts nothing twice. Nil
// (no injection) when the setting is empty, as in every deployment.
func crashPoint(log *slog.Logger, point string) func(string, syncer.Delivery) {
	if point == "" {
		return nil
	}
	log.Warn("fault injection on: the handler exits at this point of a first delivery", "point", point)
	return func(at string, d syncer.Delivery) {
		if at == point && d.DequeueCount <= 1 {
			log.Warn("fault injection: exiting", "point", at, "message", d.MessageID)
			os.Exit(3)
		}
	}
}
