// Command handler is a small custom handler used by devhost's tests. It
// serves the forwarded HTTP functions at /api/... and the envelope functions
// at POST /<FunctionName>.
package main

import (
	"encoding/json"
	"flag"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

type envelope struct {
	Data     map[string]json.RawMessage `json:"Data"`
	Metadata map[string]json.RawMessage `json:"Metadata"`
}

func main() {
	greeting := flag.String("greeting", "", "set by host.json arguments")
	flag.Parse()
	port := os.Getenv("FUNCTIONS_CUSTOMHANDLER_PORT")
	mux := http.NewServeMux()
	// No handler for "/": readiness must accept any answer, 404 included.

	mux.HandleFunc("/api/hello/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Handler", "yes")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{
			"method": r.Method, "path": r.URL.Path, "query": r.URL.RawQuery, "body": string(body),
			"greeting": os.Getenv("GREETING"), "workQueue": os.Getenv("WorkQueue"), "arg": *greeting, "appRoot": os.Getenv("FUNCTIONS_APP_ROOT_PATH"),
			"invocationId": r.Header.Get("X-Azure-Functions-InvocationId"), "workerId": os.Getenv("FUNCTIONS_CUSTOMHANDLER_WORKER_ID"),
			"pid": os.Getpid(),
		})
	})
	mux.HandleFunc("/api/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	})
	mux.HandleFunc("/api/secret", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"secret": "admin only"})
	})
	mux.HandleFunc("/api/crash", func(w http.ResponseWriter, r *http.Request) {
		os.Exit(3)
	})
	mux.HandleFunc("POST /Echo", func(w http.ResponseWriter, r *http.Request) {
		env := decode(r)
		body, _ := json.Marshal(map[string]any{"req": env.Data["req"], "meta": env.Metadata})
		reply(w, map[string]any{
			"Outputs": map[string]any{
				"res": map[string]any{"statusCode": "202", "headers": map[string]string{"Content-Type": "application/json", "X-Echo": "1"}, "body": string(body)},
				"out": []any{"plain message one", map[string]any{"kind": "object", "n": 1}},
			},
			"Logs": []string{"echo handled"},
		})
	})
	mux.HandleFunc("POST /Work", func(w http.ResponseWriter, r *http.Request) {
		env := decode(r)
		raw := env.Data["msg"]
		text := unquote(raw)
		if ms, ok := strings.CutPrefix(text, "sleep:"); ok {
			n, _ := strconv.Atoi(ms)
			time.Sleep(time.Duration(n) * time.Millisecond)
		}
		reply(w, map[string]any{"ReturnValue": map[string]any{
			"got": text, "raw": string(raw), "dequeueCount": string(env.Metadata["DequeueCount"]),
			"id": string(env.Metadata["Id"]), "insertionTime": string(env.Metadata["InsertionTime"]),
			"hasSys": env.Metadata["sys"] != nil,
		}})
	})
	mux.HandleFunc("POST /Fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "always fails", http.StatusInternalServerError)
	})
	timer := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			env := decode(r)
			reply(w, map[string]any{"ReturnValue": map[string]any{"fn": name, "timer": env.Data["timer"], "at": time.Now().UTC()}})
		}
	}
	mux.HandleFunc("POST /Tick", timer("Tick"))
	mux.HandleFunc("POST /Nightly", timer("Nightly"))

	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(http.Serve(ln, mux))
}

func decode(r *http.Request) envelope {
	var env envelope
	_ = json.NewDecoder(r.Body).Decode(&env)
	return env
}

// unquote removes up to two levels of JSON string encoding.
func unquote(raw json.RawMessage) string {
	s := string(raw)
	for range 2 {
		var t string
		if json.Unmarshal([]byte(s), &t) != nil {
			break
		}
		s = t
	}
	return s
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
