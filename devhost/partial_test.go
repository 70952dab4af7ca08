package devhost

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAppWithFunctionsInError runs the test app with three functions devhost
// cannot run laid over it (testdata/apps/partial: a blobTrigger, a Service
// Bus output, a malformed function.json): those are listed as in error and
// disabled with their reasons, and every other function runs.
func TestAppWithFunctionsInError(t *testing.T) {
	dir := newApp(t, "basic", "partial")
	env := baseEnv(t)
	rt := startHost(t, dir, env, Options{})

	errs := rt.h.FunctionErrors()
	want := map[string][]string{
		"Broken": {filepath.Join("Broken", "function.json"), "invalid JSON at line 4"},
		"Notify": {filepath.Join("Notify", "function.json"), "bindings[2].type", `"serviceBus"`, "not supported by devhost"},
		"Upload": {filepath.Join("Upload", "function.json"), "bindings[0].type", `"blobTrigger"`, "not supported by devhost"},
	}
	if len(errs) != len(want) {
		t.Fatalf("function errors %+v, want %d", errs, len(want))
	}
	log := rt.log.String()
	if !strings.Contains(log, "The following 3 functions are in error and disabled:") {
		t.Errorf("start-up log lacks the list of functions in error:\n%s", log)
	}
	for _, fe := range errs {
		ws, ok := want[fe.Name]
		if !ok {
			t.Errorf("unexpected function in error %s: %v", fe.Name, fe.Err)
			continue
		}
		for _, w := range ws {
			if !strings.Contains(fe.Err.Error(), w) {
				t.Errorf("%s: reason %q does not mention %q", fe.Name, fe.Err, w)
			}
		}
		if line := "        " + fe.Name + ": " + fe.Err.Error(); !strings.Contains(log, line) {
			t.Errorf("start-up log lacks %q", line)
		}
	}

	t.Run("HTTP functions run", func(t *testing.T) {
		resp, err := http.Get(rt.h.URL() + "/api/hello/World")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("GET /api/hello/World: %d, want 201", resp.StatusCode)
		}
	})
	t.Run("queue functions run", func(t *testing.T) {
		conn := env["AzureWebJobsStorage"]
		enqueue(t, queueOf(t, conn, env["WorkQueue"]), b64("still works"))
		m := collect(t, queueOf(t, conn, env["DoneQueue"]), 1, 15*time.Second)
		if !strings.Contains(m[0], `"got":"still works"`) {
			t.Errorf("Work output = %s", m[0])
		}
	})
	t.Run("functions in error do not run", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"POST", "/api/notify"},             // Notify's route is not served
			{"POST", "/admin/functions/Upload"}, // nor can it be run by hand
			{"POST", "/admin/functions/Notify"},
		} {
			req, _ := http.NewRequest(c.method, rt.h.URL()+c.path, strings.NewReader(`{"input":"x"}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s %s: %d, want 404", c.method, c.path, resp.StatusCode)
			}
		}
	})
}
