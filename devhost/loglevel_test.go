package devhost

import (
	"net/http"
	"strings"
	"testing"
)

// host.json logging.logLevel "Function.<Name>": "Warning" silences that
// function's Executing/Executed lines (Information), as in the Azure host,
// while its invocations still run; a failure (Error) would still be logged.
// Also: what matches no route is the host's empty 404, and the listing
// shows a URL one can open.
func TestFunctionLogLevelAndListing(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	env["AzureFunctionsJobHost__logging__logLevel__Function.Hello"] = "Warning"
	rt := startHost(t, dir, env, Options{})
	for range 2 {
		resp, err := http.Get(rt.h.URL() + "/api/hello/World")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 201 {
			t.Fatalf("hello: %d", resp.StatusCode)
		}
	}
	if n := len(rt.rec.of("Hello")); n != 2 {
		t.Fatalf("Hello ran %d times, want 2", n)
	}
	log := rt.log.String()
	if strings.Contains(log, "Executing 'Functions.Hello'") || strings.Contains(log, "Executed 'Functions.Hello'") {
		t.Errorf("Function.Hello at Warning still logs its runs:\n%s", log)
	}
	if !rt.h.app.functionLogs("Hello", levelError) || rt.h.app.functionLogs("Hello", levelInformation) || !rt.h.app.functionLogs("Echo", levelInformation) {
		t.Error("levels: Hello errors must be logged, its information not, other functions' information must")
	}
	// The listing: an openable URL, the template beside it.
	if !strings.Contains(log, "Hello: [GET,POST] "+rt.h.URL()+"/api/hello/{name:alpha} (route api/hello/{name:alpha}/{n:int?}, forwarded)") {
		t.Errorf("listing:\n%s", log)
	}

	resp, err := http.Get(rt.h.URL() + "/api/nothing")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 404 || body != "" {
		t.Errorf("no route: %d %q, want the host's 404 with an empty body", resp.StatusCode, body)
	}
}

func TestRouteOpenable(t *testing.T) {
	for tmpl, want := range map[string]string{
		"api/products/{*path}":                "api/products",
		"api/health":                          "api/health",
		"api/hello/{name:alpha}/{n:int?}":     "api/hello/{name:alpha}",
		"api/health/{sub}/{*path}":            "api/health/{sub}",
		"api/page/{n=1}":                      "api/page",
		"api/{first:regex(^a(b|c)$)}/{*rest}": "api/{first:regex(^a(b|c)$)}",
	} {
		r, err := parseRoute(tmpl)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.openable(); got != want {
			t.Errorf("openable(%q) = %q, want %q", tmpl, got, want)
		}
	}
}
