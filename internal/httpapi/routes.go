package httpapi

import "net/http"

// routes is the whole HTTP API in one place.
func (s *server) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", s.ready)

	mux.HandleFunc("GET /api/products", s.products.list)
	mux.HandleFunc("POST /api/products", s.products.create)
	mux.HandleFunc("GET /api/products/{id}", s.products.get)
	mux.HandleFunc("PUT /api/products/{id}", s.products.replace)
	mux.HandleFunc("PATCH /api/products/{id}", s.products.patch)
	mux.HandleFunc("DELETE /api/products/{id}", s.products.delete)

	mux.HandleFunc("GET /api/users", s.users.list)
	mux.HandleFunc("POST /api/users", s.users.create)
	mux.HandleFunc("GET /api/users/{id}", s.users.get)
	mux.HandleFunc("PUT /api/users/{id}", s.users.replace)
	mux.HandleFunc("PATCH /api/users/{id}", s.users.patch)
	mux.HandleFunc("DELETE /api/users/{id}", s.users.delete)

	mux.HandleFunc("GET /api/health", s.health)
}
