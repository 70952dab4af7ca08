package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// minimalServerArg re-executes the bench binary as the minimal server.
const minimalServerArg = "minimal-server"

// serveMinimal is the least an HTTP API over the adapter's read statements
// can do: net/http routing, one pgx query, encoding/json. No validation,
// failover, timeouts, problem+json or logging. It runs as a process of its
// own, as the handler does, so that the gap between it and the pgx baseline
// is what HTTP itself costs here, and the gap between the handler and it is
// what dualsync adds.
func serveMinimal(ctx context.Context, addr, dbURL string) error {
	pool, err := pgxpool.New(ctx, dbURL) // default size, as the adapter's
	if err != nil {
		return err
	}
	defer pool.Close()
	type product struct {
		ID          int64      `json:"id"`
		Name        string     `json:"name"`
		Description string     `json:"description"`
		Price       string     `json:"price"`
		CreatedAt   time.Time  `json:"createdAt"`
		UpdatedAt   time.Time  `json:"updatedAt"`
		DeletedAt   *time.Time `json:"deletedAt,omitempty"`
	}
	scan := func(row pgx.Row) (product, error) {
		var p product
		err := row.Scan(&p.ID, &p.Name, &p.Description, &p.Price, &p.CreatedAt, &p.UpdatedAt, &p.DeletedAt)
		return p, err
	}
	reply := func(w http.ResponseWriter, v any, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /api/products/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad id", http.StatusBadRequest)
			return
		}
		p, err := scan(pool.QueryRow(r.Context(), "SELECT "+productCols+" FROM products WHERE id = $1 AND deleted_at IS NULL", id))
		reply(w, p, err)
	})
	mux.HandleFunc("GET /api/products", func(w http.ResponseWriter, r *http.Request) {
		rows, err := pool.Query(r.Context(), "SELECT "+productCols+" FROM products WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2", int64(0), 100)
		if err != nil {
			reply(w, nil, err)
			return
		}
		ps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (product, error) { return scan(row) })
		reply(w, ps, err)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// startMinimal runs serveMinimal in a child process on the primary.
func (b *bench) startMinimal(ctx context.Context, p pair) (*proc, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", err
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	pr, err := b.start(ctx, "minimal server", exe, []string{minimalServerArg, addr}, []string{"BENCH_DATABASE_URL=" + p.Primary})
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	return pr, base, waitHTTP(ctx, pr, base+"/", http.StatusOK, 30*time.Second)
}
