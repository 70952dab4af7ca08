package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rakyll/hey/requester"
)

// op is one API operation measured three ways: through devhost, straight
// to the handler, and as the adapter's SQL from a minimal pgx program.
type op struct {
	Name string
	Read bool
	req  func(base string, maxID int) *http.Request
	sql  func(ctx context.Context, pool *pgxpool.Pool, maxID int) error
}

// productCols and the statements below are copied from internal/postgres
// so the baseline does exactly the adapter's database work.
const productCols = "id, name, description, price::text, created_at, updated_at, deleted_at"

// randomID picks one of the loaded products (odd ids 1..2n-1).
func randomID(n int) int64 { return 2*int64(rand.IntN(n)) + 1 }

func jsonReq(method, url, body string) *http.Request {
	r, _ := http.NewRequest(method, url, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func productBody() string {
	return fmt.Sprintf(`{"name":"Bench %d","description":"Written by cmd/bench","price":"%d.%02d"}`,
		rand.IntN(1_000_000), rand.IntN(10000), rand.IntN(100))
}

type scanned struct {
	id                int64
	name, desc, price string
	created, updated  time.Time
	deleted           *time.Time
}

func scanRow(row pgx.Row) error {
	var s scanned
	return row.Scan(&s.id, &s.name, &s.desc, &s.price, &s.created, &s.updated, &s.deleted)
}

func inTx(ctx context.Context, pool *pgxpool.Pool, fn func(pgx.Tx) error) error {
	tx, err := pool.Begin(ctx)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	return tx.Commit(ctx)
}

func apiOps() []op {
	return []op{
		{
			Name: "GET /api/products/{id}", Read: true,
			req: func(base string, n int) *http.Request {
				r, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/products/%d", base, randomID(n)), nil)
				return r
			},
			sql: func(ctx context.Context, pool *pgxpool.Pool, n int) error {
				return scanRow(pool.QueryRow(ctx, "SELECT "+productCols+" FROM products WHERE id = $1 AND deleted_at IS NULL", randomID(n)))
			},
		},
		{
			Name: "GET /api/products?limit=100", Read: true,
			req: func(base string, _ int) *http.Request {
				r, _ := http.NewRequest(http.MethodGet, base+"/api/products?limit=100", nil)
				return r
			},
			sql: func(ctx context.Context, pool *pgxpool.Pool, _ int) error {
				rows, err := pool.Query(ctx, "SELECT "+productCols+" FROM products WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2", int64(0), 100)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					if err := scanRow(rows); err != nil {
						return err
					}
				}
				return rows.Err()
			},
		},
		{
			Name: "POST /api/products",
			req: func(base string, _ int) *http.Request {
				return jsonReq(http.MethodPost, base+"/api/products", productBody())
			},
			sql: func(ctx context.Context, pool *pgxpool.Pool, _ int) error {
				now := time.Now().UTC().Truncate(time.Millisecond)
				return inTx(ctx, pool, func(tx pgx.Tx) error {
					var id int64
					if err := tx.QueryRow(ctx, `INSERT INTO products (id, name, description, price, created_at, updated_at, ver_p, ver_f, name_at, description_at, price_at)
						VALUES (nextval('products_id_seq'), $1, $2, $3::numeric, $4, $4, 1, 0, $4, $4, $4) RETURNING id`,
						"Bench baseline", "Written by cmd/bench", "12.34", now).Scan(&id); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "INSERT INTO outbox (entity, entity_id, counter, created_at) VALUES ($1, $2, $3, $4)", "product", id, 1, now)
					return err
				})
			},
		},
		{
			Name: "PUT /api/products/{id}",
			req: func(base string, n int) *http.Request {
				return jsonReq(http.MethodPut, fmt.Sprintf("%s/api/products/%d", base, randomID(n)), productBody())
			},
			sql: func(ctx context.Context, pool *pgxpool.Pool, n int) error {
				id := randomID(n)
				return inTx(ctx, pool, func(tx pgx.Tx) error {
					if err := scanRow(tx.QueryRow(ctx, "SELECT "+productCols+" FROM products WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", id)); err != nil {
						return err
					}
					now := time.Now().UTC().Truncate(time.Millisecond)
					var counter int64
					if err := tx.QueryRow(ctx, `UPDATE products SET name = $2, description = $3, price = $4::numeric, updated_at = $5,
						ver_p = ver_p + 1, name_at = $5, description_at = $5, price_at = $5 WHERE id = $1 RETURNING ver_p`,
						id, "Bench baseline", "Written by cmd/bench", "43.21", now).Scan(&counter); err != nil {
						return err
					}
					_, err := tx.Exec(ctx, "INSERT INTO outbox (entity, entity_id, counter, created_at) VALUES ($1, $2, $3, $4)", "product", id, counter, now)
					return err
				})
			},
		},
	}
}

// measurement is one row's throughput and latency.
type measurement struct {
	RPS      float64
	P50, P99 time.Duration
	Requests int
	Failed   int // errors or non-2xx answers
}

// runHey drives reqFn with hey's engine (the `go tool hey` load generator,
// used as a library so every request can carry a random id or a new body)
// at concurrency c for d, and parses hey's own summary.
func runHey(ctx context.Context, reqFn func() *http.Request, c int, d time.Duration) (measurement, error) {
	return runHeyRate(ctx, reqFn, c, d, 0)
}

// runHeyRate is runHey with the clients together limited to rate requests/s
// (0: as fast as they can).
func runHeyRate(ctx context.Context, reqFn func() *http.Request, c int, d time.Duration, rate float64) (measurement, error) {
	var buf bytes.Buffer
	w := &requester.Work{
		Request:     reqFn(), // hey reads Host from it even with RequestFunc
		RequestFunc: reqFn,
		N:           math.MaxInt32, // as `hey -z`: run until stopped
		C:           c,
		QPS:         rate / float64(c), // hey's limit is per client
		Timeout:     20,
		Writer:      &buf,
	}
	w.Init()
	stopped := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { w.Stop(); close(stopped) }) }
	t := time.AfterFunc(d, stop)
	defer t.Stop()
	go func() {
		select {
		case <-ctx.Done():
			stop()
		case <-stopped:
		}
	}()
	w.Run()
	stop()
	if ctx.Err() != nil {
		return measurement{}, ctx.Err()
	}
	s, err := parseHeySummary(buf.String())
	if err != nil {
		return measurement{}, err
	}
	m := measurement{RPS: s.RPS, P50: s.Percentiles[50], P99: s.Percentiles[99]}
	for code, n := range s.Status {
		m.Requests += n
		if code < 200 || code > 299 {
			m.Failed += n
		}
	}
	m.Failed += s.Errors
	m.Requests += s.Errors
	return m, nil
}

// runBaseline issues fn from c goroutines for d and measures it like hey.
func runBaseline(ctx context.Context, fn func(context.Context) error, c int, d time.Duration) (measurement, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		mu     sync.Mutex
		lats   []time.Duration
		failed int
		first  error
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Go(func() {
			var local []time.Duration
			var bad int
			var ferr error
			for ctx.Err() == nil {
				t0 := time.Now()
				err := fn(ctx)
				if ctx.Err() != nil {
					break // cut short by the deadline: not a sample
				}
				if err != nil {
					bad++
					if ferr == nil {
						ferr = err
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, local...)
			failed += bad
			if first == nil {
				first = ferr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if first != nil && len(lats) == 0 {
		return measurement{}, first
	}
	m := measurement{
		RPS:      float64(len(lats)+failed) / elapsed.Seconds(),
		P50:      percentile(lats, 50),
		P99:      percentile(lats, 99),
		Requests: len(lats) + failed,
		Failed:   failed,
	}
	return m, nil
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// apiSection loads the catalogue, starts devhost and the handler and runs
// every (operation, concurrency) three ways back to back, so each ratio
// compares runs made under the same load on the machine.
func (b *bench) apiSection(ctx context.Context, rep *report) error {
	n := b.cfg.Products
	b.logf("API: creating databases and loading %d products (twice: straight and through devhost)", n)
	// Two pairs: the handler measured straight and the baseline use one,
	// devhost the other, so devhost's queue consumers (and its outbox
	// relay) never sync the straight handler's writes.
	straight, err := b.newPair(ctx, n)
	if err != nil {
		return err
	}
	hosted, err := b.newPair(ctx, n)
	if err != nil {
		return err
	}
	if err := b.httpFloor(ctx, rep); err != nil {
		return err
	}
	ops := apiOps()
	if err := b.apiRows(ctx, rep, straight, hosted, ops, 0); err != nil {
		return err
	}
	if b.cfg.DBRTT <= 0 {
		return nil
	}
	// The reads again with the databases one network hop away, as in
	// Azure, where the SQL's round trip is no longer far below HTTP's.
	var far [2]pair
	for i, p := range []pair{straight, hosted} {
		for _, u := range []struct{ in, out *string }{{&p.Primary, &far[i].Primary}, {&p.Fallback, &far[i].Fallback}} {
			if *u.out, err = b.delayed(*u.in, b.cfg.DBRTT); err != nil {
				return err
			}
		}
	}
	return b.apiRows(ctx, rep, far[0], far[1], slices.DeleteFunc(ops, func(o op) bool { return !o.Read }), b.cfg.DBRTT)
}

// delayed returns dbURL reached through a delayProxy adding rtt, which
// stays up until the bench ends.
func (b *bench) delayed(dbURL string, rtt time.Duration) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	px, err := startDelayProxy(u.Host, rtt)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	b.proxies = append(b.proxies, px)
	b.mu.Unlock()
	u.Host = px.Addr()
	return u.String(), nil
}

// apiRows measures ops: the pgx baseline, the minimal server (reads) and the
// handler straight on the pair straight, devhost on the pair hosted, at
// each concurrency.
func (b *bench) apiRows(ctx context.Context, rep *report, straight, hosted pair, ops []op, rtt time.Duration) error {
	n := b.cfg.Products
	hp, direct, err := b.startHandler(ctx, straight, b.directStorage)
	if err != nil {
		return err
	}
	// Stopped at the end: a devhost left running would consume the sync
	// section's queue messages against these databases.
	defer hp.stop()
	dp, devhost, err := b.startDevhost(ctx, hosted)
	if err != nil {
		return err
	}
	defer dp.stop()
	devhostHandler, err := childPID(dp.cmd.Process.Pid)
	if err != nil {
		return err
	}
	mp, minimal, err := b.startMinimal(ctx, straight)
	if err != nil {
		return err
	}
	defer mp.stop()
	pool, err := pgxpool.New(ctx, straight.Primary) // default size, as the adapter's
	if err != nil {
		return err
	}
	defer pool.Close()
	rep.PoolSize = pool.Config().MaxConns
	// The processes whose CPU each row reports: the handler, the host and
	// the storage it enqueues to (PostgreSQL is shared with the machine).
	procs := map[string]procSet{
		"direct":  {Handler: hp.cmd.Process.Pid, Storage: pidOf(b.azuriteDirect)},
		"devhost": {Handler: devhostHandler, Host: dp.cmd.Process.Pid, Storage: pidOf(b.azurite)},
	}

	for _, o := range ops {
		if !strings.Contains(o.Name, b.cfg.Ops) {
			continue
		}
		conc := b.cfg.Concurrency
		if !o.Read {
			conc = b.cfg.WriteConc
		}
		for _, c := range conc {
			base, err := runBaseline(ctx, func(ctx context.Context) error { return o.sql(ctx, pool, n) }, c, b.cfg.Duration)
			if err != nil {
				return fmt.Errorf("%s baseline c=%d: %w", o.Name, c, err)
			}
			hey := func(via, url string) (measurement, cpuUse, error) {
				ps := procs[via]
				c0, t0 := ps.cpu(), time.Now()
				m, err := runHey(ctx, func() *http.Request { return o.req(url, n) }, c, b.cfg.Duration)
				if err != nil {
					return m, cpuUse{}, fmt.Errorf("%s via %s c=%d: %w", o.Name, via, c, err)
				}
				use := ps.cpu().sub(c0)
				use.Wall = time.Since(t0)
				b.logf("%-28s c=%-3d rtt=%-6v %-7s %8.1f req/s p50 %v p99 %v (baseline %8.1f req/s) failed %d; CPU %s",
					o.Name, c, rtt, via, m.RPS, m.P50, m.P99, base.RPS, m.Failed, use)
				return m, use, nil
			}
			var minM measurement
			if o.Read {
				if minM, _, err = hey("minimal", minimal); err != nil {
					return err
				}
			}
			for _, via := range []struct{ name, url string }{{"direct", direct}, {"devhost", devhost}} {
				m, use, err := hey(via.name, via.url)
				if err != nil {
					return err
				}
				rep.API = append(rep.API, apiRow{Op: o.Name, Read: o.Read, Via: via.name, C: c, M: m, Base: base, Minimal: minM, DBRTT: rtt, CPU: use})
			}
		}
	}
	return nil
}

// httpFloor measures hey against a no-op HTTP server in this process: the
// most any HTTP API can reach here with this load generator on this machine,
// which shows how much of a gap to the pgx baseline is HTTP and hey itself.
func (b *bench) httpFloor(ctx context.Context, rep *report) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	body := []byte(`{"id":1,"name":"x"}`)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/api/products/1"
	for _, c := range b.cfg.Concurrency {
		m, err := runHey(ctx, func() *http.Request { r, _ := http.NewRequest(http.MethodGet, url, nil); return r }, c, b.cfg.Duration)
		if err != nil {
			return fmt.Errorf("HTTP floor c=%d: %w", c, err)
		}
		b.logf("HTTP floor (no-op server)     c=%-3d %8.1f req/s p50 %v", c, m.RPS, m.P50)
		rep.Floor = append(rep.Floor, floorRow{C: c, M: m})
	}
	return nil
}
