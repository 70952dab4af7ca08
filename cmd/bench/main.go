// Command bench measures dualsync against baselines taken in the same run
// and writes BENCHMARKS.md. The machine is shared and noisy, so every figure
// is reported beside a baseline and their ratio. It is not part of `make test`.
//
//	go run ./cmd/bench -duration 10s -out BENCHMARKS.md
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) == 3 && os.Args[1] == minimalServerArg {
		if err := serveMinimal(ctx, os.Args[2], os.Getenv("BENCH_DATABASE_URL")); err != nil {
			fmt.Fprintln(os.Stderr, "bench minimal server:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// config holds the flags.
type config struct {
	Duration       time.Duration
	Products       int
	Concurrency    []int
	WriteConc      []int
	OutboxLoad     time.Duration
	OutboxWriters  int
	OutboxDrain    time.Duration
	Ops            string
	DBRTT          time.Duration
	SyncSizes      []int
	Sync           bool
	API            bool // the API rows (-api=false runs only the outbox/real-time and sync sections)
	SyncTimeout    time.Duration
	RealtimeWrites int
	StatusCalls    int
	Out            string
	Bin            string
	Keep           bool // leave the work directory in place
	Storage        string
	AdminURL       string
	Command        string
	AppEnv         []string // extra settings for the handler and devhost
	// Retention (retention.go): results of the expired run deleted; 0
	// skips the section; RetentionOnly measures it alone and replaces its
	// section in Out, keeping the rest.
	RetentionResults int
	RetentionOnly    bool
	// The diff section (diff.go).
	Only             string // "diff": that section alone
	DiffProducts     int
	DiffFullProducts int
	// The storage-faults section (storagefaults.go), run by -only storage-faults.
	FaultProducts int
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long each API row (and its baseline) runs")
	fs.IntVar(&c.Products, "products", 10000, "products loaded into both databases for the API rows")
	conc := fs.String("concurrency", "1,32", "comma-separated client concurrencies for the API read rows")
	wconc := fs.String("write-concurrency", "1,8,32", "comma-separated client concurrencies for the API write rows")
	fs.DurationVar(&c.OutboxLoad, "outbox-load", 60*time.Second, "how long the writers of the outbox-depth row run; 0 skips it")
	fs.IntVar(&c.OutboxWriters, "outbox-writers", 32, "concurrent API writers for the outbox-depth row")
	fs.DurationVar(&c.OutboxDrain, "outbox-drain", 10*time.Minute, "give up waiting for the outbox to drain after the load after this long")
	fs.DurationVar(&c.DBRTT, "db-rtt", time.Millisecond, "also measure the reads with this round-trip time added between the app (and the baseline) and the databases, as in Azure; 0 skips them")
	fs.StringVar(&c.Ops, "ops", "", "only the API rows whose operation contains this text, e.g. \"GET /api/products/{id}\" (default: all)")
	sizes := fs.String("sync-sizes", "1000,10000", "comma-separated catalogue sizes for the sync rows")
	fs.BoolVar(&c.API, "api", true, "run the API rows; -api=false -sync=false runs only the outbox (real-time sync under load) rows")
	fs.BoolVar(&c.Sync, "sync", true, "run the sync, status, real-time and memory rows (needs the sync engine)")
	fs.DurationVar(&c.SyncTimeout, "sync-timeout", 15*time.Minute, "give up on one sync run after this long")
	fs.IntVar(&c.RealtimeWrites, "realtime-writes", 50, "API writes timed to the other database")
	fs.IntVar(&c.StatusCalls, "status-calls", 20, "status calls timed on the completed largest run")
	fs.StringVar(&c.Out, "out", "BENCHMARKS.md", "where to write the report")
	fs.BoolVar(&c.Keep, "keep", false, "keep the work directory (databases' and processes' logs) after the run")
	fs.StringVar(&c.Bin, "bin", "bin", "directory holding the built handler and devhost (make build)")
	fs.StringVar(&c.Storage, "storage", "private", "SyncStorage / AzureWebJobsStorage for the handler, devhost and the queue baseline: \"private\" starts an Azurite of the bench's own; or a connection string, or UseDevelopmentStorage=true (shared: other devhosts may take the bench's messages)")
	fs.StringVar(&c.AdminURL, "admin-url", adminURL(), "PostgreSQL URL used to create and drop the bench databases")
	fs.IntVar(&c.RetentionResults, "retention-results", 100_000, "results of the expired run the retention row deletes; 0 skips it")
	fs.BoolVar(&c.RetentionOnly, "retention-only", false, "measure only the retention rows, and replace only their section of -out")
	fs.StringVar(&c.Only, "only", "", "\"diff\" runs only the diff/verify section (issue 22); \"storage-faults\" only the storage-faults rows (issue 29), replacing their section of -out")
	fs.IntVar(&c.DiffProducts, "diff-products", 1_000_000, "products in both databases for the diff and verify runs (0.1% differing); 0 skips the section")
	fs.IntVar(&c.DiffFullProducts, "diff-full-products", 100_000, "products of the full run measured beside the diff run; 0 skips it")
	fs.IntVar(&c.FaultProducts, "fault-products", 3000, "products of the full runs of -only storage-faults (a fifth of them differing), timed without and with storage faults")
	appEnv := fs.String("app-env", "", "comma-separated KEY=VALUE settings for the handler and devhost, e.g. PUBLISH_WORKERS=8,LOG_LEVEL=info")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.Concurrency, err = parseInts(*conc); err != nil {
		return c, fmt.Errorf("-concurrency: %w", err)
	}
	if c.WriteConc, err = parseInts(*wconc); err != nil {
		return c, fmt.Errorf("-write-concurrency: %w", err)
	}
	if c.SyncSizes, err = parseInts(*sizes); err != nil {
		return c, fmt.Errorf("-sync-sizes: %w", err)
	}
	for _, kv := range strings.Split(*appEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return c, fmt.Errorf("-app-env: %q is not KEY=VALUE", kv)
		}
		c.AppEnv = append(c.AppEnv, kv)
	}
	if c.Duration <= 0 || c.Products < 1 {
		return c, errors.New("-duration and -products must be positive")
	}
	c.Command = "go run ./cmd/bench " + strings.Join(args, " ")
	return c, nil
}

// parseInts reads "1,32" as [1 32]; every value must be positive.
func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, errors.New("no values")
	}
	return out, nil
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, err := parseFlags(args)
	if err != nil {
		return err
	}
	for _, b := range []string{"handler", "devhost"} {
		if _, err := os.Stat(filepath.Join(cfg.Bin, b)); err != nil {
			return fmt.Errorf("%s/%s is missing: run `make build` first", cfg.Bin, b)
		}
	}
	work, err := os.MkdirTemp("", "dualsync-bench-")
	if err != nil {
		return err
	}
	logPath := filepath.Join(work, "processes.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(stdout, "bench: work dir %s (process logs in %s)\n", work, logPath)

	b := &bench{cfg: cfg, work: work, log: logf, out: stdout}
	defer b.cleanup()
	rep := &report{Command: cfg.Command, Started: time.Now().UTC()}
	if b.cfg.Storage == "private" {
		if b.cfg.Storage, b.azurite, err = b.startAzurite(ctx, "azurite", false); err != nil {
			return err
		}
		// The handler measured straight (no host) gets storage of its own,
		// which nothing consumes: devhost's queue consumers must not share
		// the CPU with it, nor take its messages.
		if b.directStorage, b.azuriteDirect, err = b.startAzurite(ctx, "azurite-direct", false); err != nil {
			return err
		}
		rep.Method = append(rep.Method, "Storage: an Azurite of the bench's own (node_modules/.bin/azurite on free ports), because the queue names are fixed and any other devhost on the shared Azurite would consume the bench's sync messages; and a second one for the handler measured straight, whose messages nothing consumes.")
	} else {
		b.directStorage = b.cfg.Storage
		rep.Method = append(rep.Method, "Storage: the Azurite given by -storage (shared with anything else using it, the direct handler included: its rows then share the CPU with devhost's consumers).")
	}

	if cfg.RetentionOnly {
		if cfg.RetentionResults <= 0 {
			return errors.New("-retention-only needs -retention-results > 0")
		}
		if err := b.retentionSection(ctx, rep); err != nil {
			return fmt.Errorf("retention rows: %w (process logs: %s)", err, logPath)
		}
		if err := spliceRetention(cfg.Out, rep); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "bench: wrote the Retention section of %s\n", cfg.Out)
		return nil
	}
	if cfg.Only == "storage-faults" {
		if err := b.storageFaultsSection(ctx, rep); err != nil {
			return fmt.Errorf("storage-faults rows: %w (process logs: %s)", err, logPath)
		}
		var md strings.Builder
		rep.faultsMarkdown(func(format string, a ...any) { fmt.Fprintf(&md, format, a...) })
		if err := spliceSection(cfg.Out, "## Storage faults", md.String()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "bench: wrote the Storage faults section of %s\n", cfg.Out)
		return nil
	}
	if cfg.Only != "" && cfg.Only != "diff" {
		return fmt.Errorf("-only %q: the sections that run alone are diff and storage-faults", cfg.Only)
	}
	if err := b.sections(ctx, rep, logPath); err != nil {
		return err
	}
	if cfg.DiffProducts > 0 {
		if err := b.diffSection(ctx, rep); err != nil {
			return fmt.Errorf("diff rows: %w (process logs: %s)", err, logPath)
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The storage-faults section is measured only by -only storage-faults:
	// a full run keeps the one the file has.
	kept := ""
	if old, err := os.ReadFile(cfg.Out); err == nil {
		if i := strings.Index(string(old), "\n## Storage faults\n"); i >= 0 {
			kept = string(old[i:])
			if j := strings.Index(kept[1:], "\n## "); j >= 0 {
				kept = kept[:j+1]
			}
		}
	}
	if err := os.WriteFile(cfg.Out, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	if kept != "" {
		if err := spliceSection(cfg.Out, "## Storage faults", kept); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "bench: wrote %s\n", cfg.Out)
	if !cfg.Keep {
		_ = os.RemoveAll(work)
	}
	return nil
}

// sections runs every section but diff's, unless -only says otherwise.
func (b *bench) sections(ctx context.Context, rep *report, logPath string) error {
	cfg, stdout := b.cfg, b.out
	if cfg.Only == "diff" {
		return nil
	}
	if cfg.API {
		if err := b.apiSection(ctx, rep); err != nil {
			return fmt.Errorf("API rows: %w (process logs: %s)", err, logPath)
		}
	} else {
		rep.Notes = append(rep.Notes, "API rows were skipped (-api=false).")
	}
	if cfg.OutboxLoad > 0 {
		if err := b.outboxSection(ctx, rep); err != nil {
			return fmt.Errorf("outbox depth: %w (process logs: %s)", err, logPath)
		}
	}
	if cfg.Sync {
		if err := b.syncSection(ctx, rep); err != nil {
			// The sync rows depend on an engine that may not exist yet: the
			// report says so instead of losing the API rows.
			rep.Notes = append(rep.Notes, "Sync rows not measured: "+err.Error())
			fmt.Fprintf(stdout, "bench: sync rows skipped: %v\n", err)
		}
	} else {
		rep.Notes = append(rep.Notes, "Sync, status, real-time and memory rows were skipped (-sync=false).")
	}
	if cfg.RetentionResults > 0 && ctx.Err() == nil {
		if err := b.retentionSection(ctx, rep); err != nil {
			rep.Notes = append(rep.Notes, "Retention rows not measured: "+err.Error())
			fmt.Fprintf(stdout, "bench: retention rows skipped: %v\n", err)
		}
	}
	return nil
}
