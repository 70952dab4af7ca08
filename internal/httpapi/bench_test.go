package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"dualsync/internal/domain"
	"dualsync/internal/failover"
	"dualsync/internal/syncer"
)

// BenchmarkGetProduct splits GET /api/products/{id} into its layers so that
// a profile shows where the handler's time goes beyond the database's.
func BenchmarkGetProduct(b *testing.B) {
	ctx := context.Background()
	p, f := openPair(b)
	price, err := domain.ParseMoney("1.00")
	if err != nil {
		b.Fatal(err)
	}
	name := "bench"
	created, err := p.CreateProduct(ctx, domain.ProductChange{Name: &name, Price: &price})
	if err != nil {
		b.Fatal(err)
	}
	id := created.ID
	fo := failover.New(p, f, failover.Options{})
	// The sync routes are not exercised: an engine without queues will do.
	h := NewServer(slog.New(slog.DiscardHandler), fo, fo, syncer.New(p, f, nil, nil, nil, syncer.Options{}))
	path := fmt.Sprintf("/api/products/%d", id)

	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			if _, err := p.GetProduct(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("failover", func(b *testing.B) {
		for b.Loop() {
			if _, err := fo.GetProduct(ctx, id); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("handler", func(b *testing.B) {
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			if w.Code != http.StatusOK {
				b.Fatal(w.Code)
			}
		}
	})
	get := func(b *testing.B, url string) {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.Run("http", func(b *testing.B) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		for b.Loop() {
			get(b, srv.URL+path)
		}
	})
	b.Run("http-parallel", func(b *testing.B) {
		srv := httptest.NewServer(h)
		defer srv.Close()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				get(b, srv.URL+path)
			}
		})
	})
}
