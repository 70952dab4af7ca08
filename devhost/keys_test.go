package devhost

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// keyReq is a request carrying key in the header (or, with inQuery, in ?code=).
func keyReq(key string, inQuery bool) *http.Request {
	r := httptest.NewRequest("GET", "/api/x", nil)
	if key == "" {
		return r
	}
	if inQuery {
		r.URL.RawQuery = "code=" + key
	} else {
		r.Header.Set(keyHeader, key)
	}
	return r
}

// Every accepted shape of the secrets file gives the same levels.
func TestLoadKeysShapes(t *testing.T) {
	dir := t.TempDir()
	hostDir := filepath.Join(dir, "secrets")
	writeFile(t, filepath.Join(hostDir, "host.json"), `{
		"masterKey": {"name": "master", "value": "M", "encrypted": false},
		"functionKeys": [{"name": "default", "value": "H", "encrypted": false}],
		"systemKeys": [{"name": "webhook", "value": "S", "encrypted": false}],
		"hostName": "x.azurewebsites.net", "instanceId": "0", "source": "runtime", "decryptionKeyId": ""}`)
	writeFile(t, filepath.Join(hostDir, "hello.json"), `{"keys": [{"name": "default", "value": "F", "encrypted": false}], "hostName": "x"}`)
	writeFile(t, filepath.Join(hostDir, "host.json.snapshot.2024.json"), `{"masterKey": "OLD"}`)
	files := map[string]string{
		"short form": writeFile(t, filepath.Join(dir, "short.json"),
			`{"masterKey":"M","functionKeys":{"default":"H"},"systemKeys":{"webhook":"S"},"functions":{"Hello":{"default":"F"}}}`),
		"host's file shape": writeFile(t, filepath.Join(dir, "host.json"), `{
			"masterKey": {"name": "master", "value": "M", "encrypted": false},
			"functionKeys": [{"name": "default", "value": "H", "encrypted": false}],
			"systemKeys": [{"name": "webhook", "value": "S", "encrypted": false}],
			"functions": {"hello": [{"name": "default", "value": "F"}]}}`),
		"host's first format": writeFile(t, filepath.Join(dir, "v1.json"),
			`{"masterKey":"M","functionKey":"H","systemKeys":{"webhook":"S"},"functions":{"HELLO":{"k":"F"}}}`),
		"secrets directory": hostDir,
	}
	checks := []struct {
		key, fn, level string
		query, want    bool
	}{
		{"", "Hello", levelAnonymous, false, true},
		{"", "Hello", levelFunction, false, false},
		{"H", "Hello", levelFunction, false, true},
		{"H", "Hello", levelFunction, true, true},
		{"M", "Hello", levelFunction, true, true},
		{"F", "Hello", levelFunction, false, true},
		{"F", "Other", levelFunction, false, false},
		{"S", "Hello", levelFunction, false, false},
		{"S", "", levelSystem, false, true},
		{"H", "", levelSystem, false, false},
		{"M", "", levelAdmin, false, true},
		{"H", "", levelAdmin, false, false},
		{"F", "Hello", levelAdmin, false, false},
		{"S", "", levelAdmin, false, false},
		{"H", "Hello", levelUser, false, false},
		{"M", "Hello", levelUser, false, true},
		{"h", "Hello", levelFunction, false, false}, // keys are case-sensitive
		{"HH", "Hello", levelFunction, false, false},
		{"OLD", "", levelAdmin, false, false}, // snapshots are not live keys
	}
	for name, path := range files {
		t.Run(name, func(t *testing.T) {
			k, err := LoadKeys(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range checks {
				if got := k.allows(keyReq(c.key, c.query), c.fn, c.level); got != c.want {
					t.Errorf("key %q (query %v) on %s-level %q: allowed %v, want %v", c.key, c.query, c.level, c.fn, got, c.want)
				}
			}
		})
	}
}

// The host reads x-functions-key before ?code=: a wrong header is not
// rescued by a right code.
func TestRequestKeyHeaderWins(t *testing.T) {
	k, err := LoadKeys(writeFile(t, filepath.Join(t.TempDir(), "k.json"), `{"masterKey":"M","functionKeys":{"default":"H"}}`))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/x?code=H", nil)
	r.Header.Set("X-Functions-Key", "wrong")
	if k.allows(r, "F", levelFunction) {
		t.Error("a wrong header key with a right code was allowed")
	}
	r.Header.Set("X-Functions-Key", "H")
	r.URL.RawQuery = "code=wrong"
	if !k.allows(r, "F", levelFunction) {
		t.Error("a right header key with a wrong code was refused")
	}
}

func TestLoadKeysErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, body string
		want       []string
	}{
		{"invalid JSON", `{"masterKey": }`, []string{"bad.json", "invalid JSON at line 1"}},
		{"no keys", `{"hostName": "x"}`, []string{"no keys"}},
		{"empty master", `{"masterKey": ""}`, []string{"masterKey", "empty key"}},
		{"encrypted", `{"masterKey": {"name": "master", "value": "CfDJ8...", "encrypted": true}}`, []string{"masterKey", "encrypted"}},
		{"number", `{"functionKeys": {"default": 5}}`, []string{"functionKeys", "default"}},
		{"bad list", `{"functionKeys": 5}`, []string{"functionKeys"}},
		{"bad function", `{"masterKey": "M", "functions": {"Hello": [{"name": "default", "value": ""}]}}`, []string{"functions.Hello", "[0]", "empty key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadKeys(writeFile(t, filepath.Join(dir, "bad.json"), tc.body))
			if err == nil {
				t.Fatal("LoadKeys succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "CfDJ8") {
				t.Errorf("error %q shows a key value", err)
			}
		})
	}
	if _, err := LoadKeys(filepath.Join(dir, "absent.json")); err == nil {
		t.Error("a missing file was accepted")
	}
	if _, err := LoadKeys(t.TempDir()); err == nil || !strings.Contains(err.Error(), "host.json") {
		t.Errorf("a directory without host.json: %v", err)
	}
}

// With keys, devhost answers as the Azure host: 401 without or with a wrong
// key (nothing reaches the handler), 2xx with a valid one, anonymous routes
// open, admin-level routes and the admin API only to the master key.
func TestKeysEnforced(t *testing.T) {
	const master, hostKey, helloKey, otherKey = "master-Zq81", "host-Xy42", "hello-Pv77", "slow-Lk09"
	keys, err := LoadKeys(writeFile(t, filepath.Join(t.TempDir(), "keys.json"),
		`{"masterKey":"`+master+`","functionKeys":{"default":"`+hostKey+`"},"functions":{"Hello":{"default":"`+helloKey+`"},"Slow":{"default":"`+otherKey+`"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	rt := startHost(t, newApp(t, "basic"), baseEnv(t), Options{Keys: keys})
	if !strings.Contains(rt.log.String(), "Function keys enforced (authLevel): master key set, 1 host key(s)") ||
		strings.Contains(rt.log.String(), "not enforced") {
		t.Errorf("start-up log does not say keys are enforced:\n%s", rt.log.String())
	}

	tests := []struct {
		name, method, path, header string
		status                     int
		fn                         string // the function that must (2xx) or must not (401) run
	}{
		{"function level, no key", "GET", "/api/hello/World", "", 401, "Hello"},
		{"function level, wrong key in header", "GET", "/api/hello/World", "nope", 401, "Hello"},
		{"function level, wrong key in code", "GET", "/api/hello/World?code=nope", "", 401, "Hello"},
		{"function level, empty code", "GET", "/api/hello/World?code=", "", 401, "Hello"},
		{"function level, another function's key", "GET", "/api/hello/World", otherKey, 401, "Hello"},
		{"function level, host key in header", "GET", "/api/hello/World", hostKey, 201, "Hello"},
		{"function level, host key in code", "POST", "/api/hello/World/2?code=" + hostKey, "", 201, "Hello"},
		{"function level, master key in code", "GET", "/api/hello/World?code=" + master, "", 201, "Hello"},
		{"function level, its own key", "GET", "/api/hello/World", helloKey, 201, "Hello"},
		{"anonymous, no key", "POST", "/api/echo/a", "", 202, "Echo"},
		{"anonymous, wrong key", "POST", "/api/echo/a", "nope", 202, "Echo"},
		{"admin level, host key", "GET", "/api/secret", hostKey, 401, "Secret"},
		{"admin level, function key", "GET", "/api/secret", helloKey, 401, "Secret"},
		{"admin level, master key", "GET", "/api/secret", master, 200, "Secret"},
		{"admin API, no key", "GET", "/admin/host/status", "", 401, ""},
		{"admin API, host key", "POST", "/admin/functions/Work", hostKey, 401, "Work"},
		{"admin API, master key in code", "GET", "/admin/host/status?code=" + master, "", 200, ""},
		{"no route stays 404", "GET", "/api/nothing", "", 404, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := 0
			if tc.fn != "" {
				before = len(rt.rec.of(tc.fn))
			}
			req, _ := http.NewRequest(tc.method, rt.h.URL()+tc.path, strings.NewReader(`{"input":"x"}`))
			if tc.header != "" {
				req.Header.Set("x-functions-key", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != http.StatusUnauthorized {
				return
			}
			if body != "" {
				t.Errorf("401 body %q, want none", body)
			}
			for _, k := range []string{master, hostKey, helloKey, otherKey, "nope"} {
				if strings.Contains(body, k) || strings.Contains(strings.ToLower(strings.Join(headerLines(resp.Header), "\n")), strings.ToLower(k)) {
					t.Errorf("the 401 answer mentions key %q", k)
				}
			}
			if tc.fn != "" {
				if n := len(rt.rec.of(tc.fn)); n != before {
					t.Errorf("%s ran %d time(s) for a refused call", tc.fn, n-before)
				}
			}
		})
	}
	for _, k := range []string{master, hostKey, helloKey, otherKey} {
		if strings.Contains(rt.log.String(), k) {
			t.Errorf("the host log shows key %q", k)
		}
	}
}

func headerLines(h http.Header) []string {
	var out []string
	for k, vs := range h {
		for _, v := range vs {
			out = append(out, k+": "+v)
		}
	}
	return out
}

// Without keys every route is open, as under Core Tools, and devhost says so
// once at start-up.
func TestNoKeysSaysSoOnce(t *testing.T) {
	rt := startHost(t, newApp(t, "basic"), baseEnv(t), Options{})
	if n := strings.Count(rt.log.String(), "Function keys are not enforced"); n != 1 {
		t.Errorf("start-up notice printed %d times, want once:\n%s", n, rt.log.String())
	}
	if strings.Contains(rt.log.String(), "Warning: listening") {
		t.Errorf("warned about exposure while listening on loopback only (%s)", rt.h.Addr())
	}
	for _, path := range []string{"/api/hello/World", "/api/secret", "/admin/host/status"} {
		resp, err := http.Get(rt.h.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Errorf("GET %s without keys: status %d, want 2xx", path, resp.StatusCode)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:7071": true, "[::1]:7071": true, "localhost:7071": true, "127.5.0.1:80": true,
		"0.0.0.0:7071": false, "[::]:7071": false, "192.0.2.1:7071": false, "nonsense": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
