package httpapi

import "net/http"

// router is the part of *http.ServeMux that routes uses; tests record the
// patterns through it to compare them with the OpenAPI document.
type router interface {
	Handle(pattern string, h http.Handler)
	HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request))
}

// routes is the whole HTTP API in one place: what clients call under /api,
// and the queue- and timer-triggered functions the Functions host invokes
// at /<FunctionName>.
func (s *server) routes(mux router) {
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
	mux.HandleFunc("GET /api/health/details", s.healthDetails)

	mux.HandleFunc("POST /api/start-product-sync", s.sync.start)
	mux.HandleFunc("POST /api/start-product-sync/{orchestrator}", s.sync.start)
	mux.HandleFunc("GET /api/product-sync", s.sync.list)
	mux.HandleFunc("GET /api/product-sync/{run}", s.sync.status)
	mux.HandleFunc("GET /api/product-sync/{run}/results", s.sync.results)

	mux.HandleFunc("GET /api/openapi.json", s.docs.openapi)
	mux.HandleFunc("GET /api/dashboard", s.docs.dashboard)
	mux.HandleFunc("GET /api/dashboard/{file}", s.docs.dashboardAsset)

	mux.Handle("POST /SyncProduct", s.sync.syncProduct())
	mux.Handle("POST /SyncProductPoison", s.sync.syncProductPoison())
	mux.Handle("POST /PlanProductSync", s.sync.planProductSync())
	mux.Handle("POST /PlanProductSyncPoison", s.sync.planProductSyncPoison())
	mux.Handle("POST /NightlyProductSync", s.sync.nightly())
	mux.Handle("POST /OutboxRelay", s.sync.relay())
	mux.Handle("POST /Retention", s.sync.retention())
}
