package main

import (
	"bufio"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// heySummary is what runBaseline needs from hey's text summary.
type heySummary struct {
	RPS         float64
	Percentiles map[int]time.Duration // 10, 25, 50, 75, 90, 95, 99
	Status      map[int]int           // status code -> responses
	Errors      int                   // requests that got no response
}

var (
	heyRPS    = regexp.MustCompile(`^Requests/sec:\s+([0-9.]+)$`)
	heyPct    = regexp.MustCompile(`^(\d+)%{1,2} in ([0-9.]+) secs$`)
	heyStatus = regexp.MustCompile(`^\[(\d+)\]\s+(\d+) responses$`)
	heyError  = regexp.MustCompile(`^\[(\d+)\]\s+(.+)$`)
)

// parseHeySummary reads hey's default (non-CSV) output.
func parseHeySummary(s string) (heySummary, error) {
	out := heySummary{Percentiles: map[int]time.Duration{}, Status: map[int]int{}}
	section := ""
	seenRPS := false
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasSuffix(line, ":") && !strings.Contains(line, "\t"):
			section = line
			continue
		case line == "":
			continue
		}
		if m := heyRPS.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				return out, err
			}
			out.RPS, seenRPS = v, true
			continue
		}
		switch section {
		case "Latency distribution:":
			if m := heyPct.FindStringSubmatch(line); m != nil {
				p, _ := strconv.Atoi(m[1])
				secs, err := strconv.ParseFloat(m[2], 64)
				if err != nil {
					return out, err
				}
				out.Percentiles[p] = time.Duration(secs * float64(time.Second))
			}
		case "Status code distribution:":
			if m := heyStatus.FindStringSubmatch(line); m != nil {
				code, _ := strconv.Atoi(m[1])
				n, _ := strconv.Atoi(m[2])
				out.Status[code] += n
			}
		case "Error distribution:":
			if m := heyError.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				out.Errors += n
			}
		}
	}
	if !seenRPS {
		return out, errors.New("hey summary has no Requests/sec line")
	}
	if _, ok := out.Percentiles[50]; !ok && len(out.Status) > 0 {
		return out, errors.New("hey summary has no latency distribution")
	}
	return out, nil
}

type apiRow struct {
	Op   string
	Read bool
	Via  string
	C    int
	M    measurement
	Base measurement
	// Minimal is the minimal net/http + pgx server (reads only; zero otherwise).
	Minimal measurement
	DBRTT   time.Duration // added between the processes and the databases
	CPU     cpuUse        // of the handler, host and storage during the row
}

// Goals: reads against the pgx baseline (any way), writes straight to the
// handler (through devhost the host's queue consumers sync every write on
// the same CPUs, which the baseline does not).
const (
	readGoal  = 0.5
	writeGoal = 0.3
)

// goal returns the row's goal and whether it has one.
func (a apiRow) goal() (float64, bool) {
	switch {
	case a.Read:
		return readGoal, true
	case a.Via == "direct":
		return writeGoal, true
	}
	return 0, false
}

// floorRow is hey against a no-op HTTP server at one concurrency.
type floorRow struct {
	C int
	M measurement
}

// simpleRow is one line of the sync, status, real-time and memory tables.
type simpleRow struct {
	What, Value, Baseline, Ratio, Goal, Met string
}

type report struct {
	Command  string
	Started  time.Time
	PoolSize int32
	API      []apiRow
	Floor    []floorRow
	Sync     []simpleRow
	Outbox   []*outboxRun // as fast as the writers go, then paced
	Notes    []string
	Method   []string
	// Retention rows (retention.go) and how they were measured.
	Retention       []simpleRow
	RetentionMethod string
	// Storage-faults rows (storagefaults.go) and how they were measured.
	Faults       []simpleRow
	FaultsMethod string
}

// msOrNA shows hey's percentiles, which it leaves out (0) below 100 samples.
func msOrNA(d time.Duration) string {
	if d == 0 {
		return "n/a"
	}
	return ms(d)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// missedReads describes the loopback read rows (straight to the handler)
// below the goal, with where the minimal server stands; httpBound reports
// whether the minimal server misses the goal on every one of them too.
func (r *report) missedReads() (missed []string, httpBound bool) {
	httpBound = true
	for _, a := range r.API {
		if !a.Read || a.DBRTT > 0 || a.Via != "direct" || a.Base.RPS == 0 || a.Minimal.RPS == 0 || a.M.RPS/a.Base.RPS >= 0.5 {
			continue
		}
		httpBound = httpBound && a.Minimal.RPS/a.Base.RPS < 0.5
		missed = append(missed, fmt.Sprintf("%s at %d client(s): the minimal server reaches %.2f of the baseline, and the handler %.2f of the minimal server",
			a.Op, a.C, a.Minimal.RPS/a.Base.RPS, a.M.RPS/a.Minimal.RPS))
	}
	return missed, httpBound
}

// missedWrites describes the write rows with a goal that they miss.
func (r *report) missedWrites() []string {
	var out []string
	for _, a := range r.API {
		g, ok := a.goal()
		if a.Read || !ok || a.DBRTT > 0 || a.Base.RPS == 0 || a.M.RPS/a.Base.RPS >= g {
			continue
		}
		out = append(out, fmt.Sprintf("%s at %d client(s) straight to the handler: %.2f of the baseline (%.0f against %.0f req/s)",
			a.Op, a.C, a.M.RPS/a.Base.RPS, a.M.RPS, a.Base.RPS))
	}
	return out
}

// readsMet reports whether every read row that keep holds meets the goal.
func (r *report) readsMet(keep func(apiRow) bool) bool {
	for _, a := range r.API {
		if a.Read && keep(a) && (a.Base.RPS == 0 || a.M.RPS/a.Base.RPS < 0.5) {
			return false
		}
	}
	return true
}

// farRTT is the round trip added in the second set of rows, if measured.
func (r *report) farRTT() time.Duration {
	for _, a := range r.API {
		if a.DBRTT > 0 {
			return a.DBRTT
		}
	}
	return 0
}

// apiTable writes the API rows that keep holds.
func (r *report) apiTable(p func(string, ...any), keep func(apiRow) bool) {
	p("| Operation | Clients | Via | req/s | p50 | p99 | Baseline req/s | Baseline p50 | Baseline p99 | Ratio | Goal | Met? | Minimal server req/s | ÷ minimal |\n")
	p("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|\n")
	for _, a := range r.API {
		if !keep(a) {
			continue
		}
		ratio := 0.0
		if a.Base.RPS > 0 {
			ratio = a.M.RPS / a.Base.RPS
		}
		goal, met := "—", "—"
		if g, ok := a.goal(); ok {
			goal, met = fmt.Sprintf("≥ %.1f", g), yesNo(ratio >= g)
		}
		if a.M.Failed > 0 {
			met += fmt.Sprintf(" (%d of %d failed)", a.M.Failed, a.M.Requests)
		}
		minRPS, vsMin := "—", "—"
		if a.Minimal.RPS > 0 {
			minRPS, vsMin = fmt.Sprintf("%.0f", a.Minimal.RPS), fmt.Sprintf("%.2f", a.M.RPS/a.Minimal.RPS)
		}
		p("| %s | %d | %s | %.0f | %s | %s | %.0f | %s | %s | %.2f | %s | %s | %s | %s |\n",
			a.Op, a.C, a.Via, a.M.RPS, msOrNA(a.M.P50), msOrNA(a.M.P99), a.Base.RPS, ms(a.Base.P50), ms(a.Base.P99), ratio, goal, met, minRPS, vsMin)
	}
}

func (r *report) markdown() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# dualsync benchmarks\n\n")
	p("Generated by `%s` (`make bench`); do not edit by hand.\n\n", r.Command)
	p("| | |\n|---|---|\n")
	p("| Date (UTC) | %s |\n", r.Started.Format("2006-01-02 15:04"))
	p("| CPUs (`runtime.NumCPU()`) | %d |\n", runtime.NumCPU())
	p("| Go | %s %s/%s |\n\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	p("Every figure is compared with a baseline measured in the same run, because the machine is shared and noisy: read the ratios, not the absolute numbers.\n\n")

	p("## API\n\n")
	p("Ratio = requests/s of the API ÷ requests/s of the baseline (the same SQL from a minimal pgx program at the same concurrency). Goal: ≥ 0.5 on reads; ≥ 0.3 on writes straight to the handler (a write also publishes its sync message after answering: one more database statement and a queue put, which the baseline does not do). *Minimal server* is the least an HTTP API over the same SQL can do (net/http, one pgx query, encoding/json, in a process of its own); *÷ minimal* shows what dualsync adds to that.\n\n")
	r.apiTable(p, func(a apiRow) bool { return a.DBRTT == 0 })
	if len(r.Floor) > 0 {
		p("\nFor scale: hey against a no-op HTTP server in the bench process (no database, no JSON encoding) reaches")
		for i, f := range r.Floor {
			sep := ","
			if i == len(r.Floor)-1 {
				sep = "."
			}
			p50 := "< 0.1 ms" // below hey's resolution
			if f.M.P50 > 0 {
				p50 = ms(f.M.P50)
			}
			p(" %.0f req/s at %d client(s) (p50 %s)%s", f.M.RPS, f.C, p50, sep)
		}
		p(" No HTTP API measured with this load generator on this machine can exceed that, so where the pgx baseline is above it (a cached single-row select costs tens of microseconds) the ratio is bounded by the HTTP floor, not by the handler.\n")
	}
	if missed, httpBound := r.missedReads(); len(missed) > 0 {
		p("\n**Reads below the goal.** %s.", strings.Join(missed, "; "))
		if !httpBound {
			p(" The minimal server reaches the goal where the handler does not: the gap is dualsync's own cost.\n")
		} else {
			p(" So the gap is HTTP itself, not dualsync: on loopback a cached single-row select costs less than one HTTP exchange between two processes on this machine (where hey, the server and PostgreSQL share %d CPUs), and no HTTP API over this SQL can reach half of a program that skips HTTP.", runtime.NumCPU())
			if far := r.farRTT(); far > 0 {
				verdict := "not every read row meets it either"
				if r.readsMet(func(a apiRow) bool { return a.DBRTT > 0 }) {
					verdict = "every read row meets it"
				}
				p(" What meets the goal is a database that costs more than HTTP, as it does once it is one network hop away: with %v added (next table), %s.", far, verdict)
			}
			p("\n")
		}
	}
	if missed := r.missedWrites(); len(missed) > 0 {
		p("\n**Writes below the goal.** %s.\n", strings.Join(missed, "; "))
	}
	if rtt := r.farRTT(); rtt > 0 {
		p("\n### Reads with the databases one network hop away (+%v round trip)\n\n", rtt)
		p("The same reads with every process, the baseline's pool included, reaching PostgreSQL through a proxy that holds each chunk for half of %v in each direction (the baseline's p50 shows the round trip that results on this machine): the situation in Azure, where the app reaches Azure SQL or PostgreSQL Flexible Server over the network rather than on loopback. At 32 clients the pool's %d connections, the same for the API and the baseline, are the limit.\n\n", rtt, r.PoolSize)
		r.apiTable(p, func(a apiRow) bool { return a.DBRTT > 0 })
	}
	r.cpuTable(p)
	r.outboxSection(p)
	if len(r.Sync) > 0 {
		p("\n## Sync, status, real-time, memory\n\n")
		p("| Measure | Value | Baseline | Ratio | Goal | Met? |\n|---|---:|---:|---:|---|---|\n")
		for _, s := range r.Sync {
			p("| %s | %s | %s | %s | %s | %s |\n", s.What, s.Value, s.Baseline, s.Ratio, s.Goal, s.Met)
		}
	}
	r.retentionMarkdown(p)
	if len(r.Notes) > 0 {
		p("\n## Notes from this run\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
	}
	p("\n## Method\n\n")
	method := []string{
		fmt.Sprintf("Fresh PostgreSQL databases are created for primary and fallback, migrated with `bin/handler migrate`, and loaded with the same products in both (ids 1, 3, 5, ...: the primary's odd ids; the primary's sequence is moved past them). They are dropped at the end, also on Ctrl-C."),
		"**Direct** is `bin/handler` started with `FUNCTIONS_CUSTOMHANDLER_PORT` (no host, so no queue consumers); **devhost** is `bin/devhost -port N <app>` on the app laid out like the Makefile's `app` target, so its requests pass through devhost's forwarding to its own handler process, and its queue triggers run. Each has a database pair of its own loaded alike (the baseline and the minimal server use the direct one), so devhost's consumers and outbox relay never sync the direct handler's writes.",
		"API load comes from hey's engine (`github.com/rakyll/hey/requester`, the same code as `go tool hey`, declared as a tool in go.mod) used as a library so that every request gets a random product id (GET/PUT) or a new body (POST/PUT); requests/s, p50 and p99 are parsed from hey's own summary (0.1 ms resolution; hey leaves p99 out below 100 requests, shown as n/a). A row counts requests that failed or answered non-2xx and shows them beside Met?.",
		fmt.Sprintf("The baseline is a pgxpool with pgx's default size (%d connections on this machine, as the adapter's pool) issuing the adapter's statements, copied from internal/postgres: select by id, list 100, insert + outbox row in a transaction, select FOR UPDATE + update + outbox row in a transaction, from the same number of goroutines for the same duration. Each operation runs baseline, minimal server (reads only), direct and devhost back to back so that all see similar background load.", r.PoolSize),
		"The minimal server is this bench binary re-executed as `bench minimal-server ADDR` (cmd/bench/minimal.go): `net/http` routes for the two reads, the same statements on a pgxpool of the default size, `encoding/json`; no validation, failover, timeouts, problem+json or logging. To see where the handler's own time goes, `go test -run '^$' -bench GetProduct -cpuprofile cpu.out ./internal/httpapi` times the layers of a GET (store, failover, handler, HTTP) in one process.",
		"Writes (POST, PUT) answer once their transaction (row + outbox row) has committed; the handler's publisher then enqueues the sync message and marks the outbox row sent in the background. Straight to the handler, nothing consumes those messages (its own Azurite), so the rows measure the write path alone; through devhost, the host's queue consumers sync every write while the load runs, on the same CPUs, and the CPU table shows their share. Write rows run at more concurrencies (`-write-concurrency`) than reads.",
		"Sync: for each catalogue size a fresh database pair is loaded, half of the fallback's rows are changed directly in SQL as an API write on the fallback would change them (a newer `updated_at` and name change time, the fallback's vector entry + 1), then the wall time runs from `POST /api/start-product-sync` (through devhost, which runs the queue triggers) until `GET /api/product-sync/<runId>` reports `runtimeStatus` Completed (polled every 100 ms). The baseline moves the same number of messages through a fresh queue on the same Azurite: as many workers as devhost keeps messages in flight (host.json `batchSize + newBatchThreshold`) enqueue while as many dequeue and delete, one message at a time each, since planning and syncing overlap in a run. After each run the bench compares every product's version in the two databases and notes how many differ.",
		fmt.Sprintf("Azurite alone: after each run, %d entity inserts into that run's results partition, and %d dequeue + delete pairs on a fresh queue first filled with as many messages as the run had products, %d at a time (cmd/bench/azurite.go). They show how Azurite's own cost per operation grows with a partition's size and a queue's backlog, which a run has and the queue baseline does not.", probeOps, probeOps, probeWorkers),
		"Status: p50 of repeated `GET /api/product-sync/<runId>` on the completed largest run, against the p50 of `GET /api/products/{id}` through devhost at 1 client. Real-time: each write is a `POST /api/products` through devhost, then the fallback database is polled every 5 ms until the row exists; the baseline is one enqueue + dequeue + delete round trip on Azurite; the gap between them is mostly devhost's queue polling, which backs off from 100 ms up to host.json `maxPollingInterval` when a queue is empty, as the Azure host does. Memory: VmHWM (peak RSS) of devhost's handler process after the largest run, against its VmHWM just before the run.",
	}
	if len(r.Outbox) > 0 {
		method = append(method, fmt.Sprintf("Outbox: for each load a fresh database pair behind devhost, %d clients sending `POST /api/products` for %s, first as fast as they can, then held together (hey's rate limit) to the rate at which sync acknowledged during the first load; both outboxes' row count is sampled every second during the load and after it until it reaches 0. Rows per write = rows the outbox sequences issued during the load ÷ writes answered 2xx; acknowledged/s = (rows issued − depth at the end) ÷ the load's duration. *Bounded* means the depth grew, over the second half of the load, by less than 5%% of the write rate; it must also drain to 0 afterwards.", r.Outbox[0].Writers, r.Outbox[0].Load))
	}
	for _, m := range append(method, r.Method...) {
		p("- %s\n", m)
	}
	return b.String()
}

// cpuTable shows what the write rows cost in CPU, and how much of it is the
// host's: through devhost its queue consumers sync every write meanwhile.
func (r *report) cpuTable(p func(string, ...any)) {
	var rows []apiRow
	for _, a := range r.API {
		if !a.Read && a.DBRTT == 0 && a.CPU.Wall > 0 {
			rows = append(rows, a)
		}
	}
	if len(rows) == 0 {
		return
	}
	p("\n### CPU during the write rows\n\n")
	p("Share of the machine's %d CPUs used by each process over the row (PostgreSQL, shared with the rest of the machine, is not counted). Straight to the handler nothing consumes the queue; through devhost, *devhost* is the host (HTTP forwarding, queue polling, invocations) and the handler also runs `SyncProduct` for every write, so *devhost* plus the handler's excess over its straight row is what the queue consumers take.\n\n", runtime.NumCPU())
	p("| Operation | Clients | Via | req/s | Handler | devhost | Azurite | Total | CPU ms per write |\n|---|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, a := range rows {
		per := "—"
		if n := a.M.Requests - a.M.Failed; n > 0 {
			per = fmt.Sprintf("%.2f", float64(a.CPU.total())/float64(time.Millisecond)/float64(n))
		}
		host := "—"
		if a.Via == "devhost" {
			host = fmt.Sprintf("%.0f%%", 100*a.CPU.share(a.CPU.Host))
		}
		p("| %s | %d | %s | %.0f | %.0f%% | %s | %.0f%% | %.0f%% | %s |\n", a.Op, a.C, a.Via, a.M.RPS,
			100*a.CPU.share(a.CPU.Handler), host, 100*a.CPU.share(a.CPU.Storage), 100*a.CPU.share(a.CPU.total()), per)
	}
}

// outboxSection shows the outbox depth under the sustained write loads,
// one column per load.
func (r *report) outboxSection(p func(string, ...any)) {
	if len(r.Outbox) == 0 {
		return
	}
	o0 := r.Outbox[0]
	p("\n## Outbox under a sustained write load\n\n")
	p("%d clients write (`POST /api/products`) through devhost for %s; its queue consumers sync the writes and acknowledge their outbox rows meanwhile, and its `OutboxRelay` runs every 10 s (local.settings.json). Depth = outbox rows of both databases not yet acknowledged, sampled every second. First the clients go as fast as they can; then, on a fresh pair, they are held together to the rate at which sync acknowledged during the first load.\n\n", o0.Writers, o0.Load)
	p("| Measure |")
	for _, o := range r.Outbox {
		if o.Rate > 0 {
			p(" Held to %.0f writes/s |", o.Rate)
		} else {
			p(" As fast as they go |")
		}
	}
	p(" Goal |\n|---|")
	for range r.Outbox {
		p("---:|")
	}
	p("---|\n")
	row := func(what, goal string, cell func(o *outboxRun) string) {
		p("| %s |", what)
		for _, o := range r.Outbox {
			p(" %s |", cell(o))
		}
		p(" %s |\n", goal)
	}
	rate := func(o *outboxRun) float64 { return float64(o.M.Requests-o.M.Failed) / o.Load.Seconds() }
	row("Writes answered 2xx", "—", func(o *outboxRun) string {
		s := fmt.Sprintf("%d (%.0f/s, p50 %s, p99 %s)", o.M.Requests-o.M.Failed, rate(o), msOrNA(o.M.P50), msOrNA(o.M.P99))
		if o.M.Failed > 0 {
			s += fmt.Sprintf(", %d failed", o.M.Failed)
		}
		return s
	})
	row("Outbox rows per write", "—", func(o *outboxRun) string { return fmt.Sprintf("%.2f", o.RowsPerWrite) })
	row("Acknowledged by sync during the load", "—", func(o *outboxRun) string { return fmt.Sprintf("%.0f/s", o.acked()) })
	row("Depth during the load: p50 / max / at the end", "—", func(o *outboxRun) string {
		return fmt.Sprintf("%d / %d / %d", o.p50(), slices.Max(append([]int64{0}, o.During...)), last(o.During))
	})
	row("Depth growth over the second half of the load", "≤ 5% of the write rate (bounded)", func(o *outboxRun) string {
		return fmt.Sprintf("%.0f rows/s (%.0f%%): %s", o.growth(), 100*o.growth()/max(rate(o), 1), yesNo(rate(o) > 0 && o.growth() <= 0.05*rate(o)))
	})
	row("Time to drain to 0 after the load", "drains to 0", func(o *outboxRun) string {
		if !o.Drained {
			return "not within the timeout: **no**"
		}
		return secs(o.DrainTime) + ": yes"
	})
	row("CPU during the load: handler / devhost / Azurite", "—", func(o *outboxRun) string {
		return fmt.Sprintf("%.0f%% / %.0f%% / %.0f%% of %d CPUs", 100*o.CPU.share(o.CPU.Handler), 100*o.CPU.share(o.CPU.Host), 100*o.CPU.share(o.CPU.Storage), runtime.NumCPU())
	})
	row("Azurite alone: one insert into one of today's 16 real-time bucket partitions (8 concurrent), before the load → after it (table entities the day holds, all partitions: a bucket holds up to 64 items' outcomes)", "—", func(o *outboxRun) string {
		return fmt.Sprintf("%s (%d entities) → %s (%d entities)", ms(o.RealtimeInsertBefore), o.RealtimeEntitiesBefore, ms(o.RealtimeInsertAfter), o.RealtimeEntitiesAfter)
	})
	p("\n")
	for _, o := range r.Outbox {
		what := "as fast as they go"
		if o.Rate > 0 {
			what = fmt.Sprintf("held to %.0f writes/s", o.Rate)
		}
		p("Depth every 5 s, %s: %s.\n\n", what, o.series(5))
	}
}
