package devhost

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Under load every call goes to the same handler: the client must reuse its
// connections rather than keep two and re-dial the rest on every call.
func TestHandlerClientReusesConnections(t *testing.T) {
	var mu sync.Mutex
	dials := 0
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(5 * time.Millisecond) // keep the calls overlapping
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			dials++
			mu.Unlock()
		}
	}
	srv.Start()
	defer srv.Close()
	client := newHandlerClient()
	const parallel, rounds = 16, 5
	for range rounds {
		var wg sync.WaitGroup
		for range parallel {
			wg.Go(func() {
				resp, err := client.Get(srv.URL)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			})
		}
		wg.Wait()
	}
	mu.Lock()
	defer mu.Unlock()
	if dials > parallel {
		t.Fatalf("%d connections for %d rounds of %d concurrent calls; want at most %d", dials, rounds, parallel, parallel)
	}
}
