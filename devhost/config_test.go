package devhost

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const goodHost = `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler"}}}`
const httpFn = `{"bindings":[{"type":"httpTrigger","direction":"in","name":"req"},{"type":"http","direction":"out","name":"res"}]}`

// writeApp writes files (path -> content) into a fresh app directory.
func writeApp(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestLoadErrorsNameFileAndField covers what stops devhost: an unusable
// host.json or local.settings.json, or no function that can run.
func TestLoadErrorsNameFileAndField(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // nil: the testdata app "badjson"
		want  []string
	}{
		{"only a malformed function.json (testdata)", nil, []string{"no function can run", "Broken: ", filepath.Join("Broken", "function.json"), "invalid JSON at line 4"}},
		{"missing host.json", map[string]string{"F/function.json": httpFn}, []string{"host.json", "missing"}},
		{"wrong version", map[string]string{"host.json": `{"version":"1.0","customHandler":{"description":{"defaultExecutablePath":"h"}}}`, "F/function.json": httpFn},
			[]string{"host.json", "version"}},
		{"no executable", map[string]string{"host.json": `{"version":"2.0","customHandler":{"description":{}}}`, "F/function.json": httpFn},
			[]string{"host.json", "customHandler.description.defaultExecutablePath"}},
		{"bad encoding", map[string]string{"host.json": `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},"extensions":{"queues":{"messageEncoding":"utf8"}}}`, "F/function.json": httpFn},
			[]string{"host.json", "extensions.queues.messageEncoding"}},
		{"bad functionTimeout", map[string]string{"host.json": `{"version":"2.0","functionTimeout":"5 minutes","customHandler":{"description":{"defaultExecutablePath":"h"}}}`, "F/function.json": httpFn},
			[]string{"host.json", "functionTimeout"}},
		{"batchSize too big", map[string]string{"host.json": `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"h"}},"extensions":{"queues":{"batchSize":64}}}`, "F/function.json": httpFn},
			[]string{"host.json", "extensions.queues.batchSize"}},
		{"non-string Values", map[string]string{"host.json": goodHost, "F/function.json": httpFn, "local.settings.json": `{"Values":{"N":5}}`},
			[]string{"local.settings.json", "Values.N"}},
		{"no functions", map[string]string{"host.json": goodHost}, []string{"no functions"}},
		{"every function in error", map[string]string{"host.json": goodHost,
			"A/function.json": `{"bindings":[{"type":"blobTrigger","name":"b","path":"x/{name}"}]}`, "B/function.json": `{"bindings":`},
			[]string{"no function can run", "all 2 are in error", "A: ", "blobTrigger", "B: ", "invalid JSON"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "apps", "badjson")
			if tc.files != nil {
				dir = writeApp(t, tc.files)
			}
			_, err := Load(dir, Options{Environ: []string{}})
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestFunctionErrorsDisableOnlyThatFunction: a function devhost cannot run
// is in error (named, with the file, field and reason) and the others load.
func TestFunctionErrorsDisableOnlyThatFunction(t *testing.T) {
	tests := []struct {
		name string
		fn   string // X/function.json
		want []string
	}{
		{"malformed JSON", "{\n  \"bindings\": [\n    { \"type\": \"httpTrigger\" }\n    {}\n  ]\n}", []string{"invalid JSON at line 4"}},
		{"not an object", `[1]`, []string{"want a JSON object"}},
		{"bindings not an array", `{"bindings":{}}`, []string{"bindings: want an array"}},
		{"blobTrigger", `{"bindings":[{"type":"blobTrigger","direction":"in","name":"b","path":"x/{name}"}]}`, []string{"bindings[0].type", `"blobTrigger"`, "not supported by devhost"}},
		{"serviceBusTrigger", `{"bindings":[{"type":"serviceBusTrigger","name":"m","queueName":"q","connection":"SB"}]}`, []string{"bindings[0].type", `"serviceBusTrigger"`}},
		{"eventHubTrigger", `{"bindings":[{"type":"eventHubTrigger","name":"e","eventHubName":"h","connection":"EH"}]}`, []string{"bindings[0].type", `"eventHubTrigger"`}},
		{"cosmosDB input beside an httpTrigger", `{"bindings":[{"type":"httpTrigger","name":"req"},{"type":"http","direction":"out","name":"res"},{"type":"cosmosDB","direction":"in","name":"doc","databaseName":"d","containerName":"c","connection":"C"}]}`,
			[]string{"bindings[2].type", `"cosmosDB"`}},
		{"sql output", `{"bindings":[{"type":"timerTrigger","name":"t","schedule":"0 * * * * *"},{"type":"sql","direction":"out","name":"rows","commandText":"dbo.T","connectionStringSetting":"S"}]}`,
			[]string{"bindings[1].type", `"sql"`}},
		{"no trigger", `{"bindings":[{"type":"http","direction":"out","name":"res"}]}`, []string{"no trigger"}},
		{"two triggers", `{"bindings":[{"type":"httpTrigger","name":"a"},{"type":"timerTrigger","name":"b","schedule":"0 * * * * *"}]}`, []string{"bindings[1]", "exactly one trigger"}},
		{"queue without queueName", `{"bindings":[{"type":"queueTrigger","direction":"in","name":"m"}]}`, []string{"bindings[0].queueName", "required"}},
		{"unresolved setting", `{"bindings":[{"type":"queueTrigger","direction":"in","name":"m","queueName":"%NoSuchSetting%"}]}`, []string{"bindings[0].queueName", "%NoSuchSetting%"}},
		{"missing connection", `{"bindings":[{"type":"queueTrigger","direction":"in","name":"m","queueName":"items","connection":"MyStorageXyz"}]}`, []string{"bindings[0].connection", "MyStorageXyz"}},
		{"bad route constraint", `{"bindings":[{"type":"httpTrigger","name":"req","route":"items/{id:number}"},{"type":"http","direction":"out","name":"res"}]}`, []string{"bindings[0].route", "number"}},
		{"bad schedule", `{"bindings":[{"type":"timerTrigger","name":"t","schedule":"every minute"}]}`, []string{"bindings[0].schedule"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeApp(t, map[string]string{"host.json": goodHost, "Good/function.json": httpFn, "X/function.json": tc.fn})
			h, err := Load(dir, Options{Environ: []string{"AzureWebJobsStorage=UseDevelopmentStorage=true"}})
			if err != nil {
				t.Fatalf("Load: %v; want only X in error", err)
			}
			if len(h.app.functions) != 1 || h.app.functions[0].Name != "Good" {
				t.Errorf("loaded %d functions, want just Good", len(h.app.functions))
			}
			errs := h.FunctionErrors()
			if len(errs) != 1 || errs[0].Name != "X" || errs[0].File != filepath.Join(dir, "X", "function.json") {
				t.Fatalf("function errors %+v, want one for X", errs)
			}
			for _, w := range append(tc.want, filepath.Join("X", "function.json")) {
				if !strings.Contains(errs[0].Err.Error(), w) {
					t.Errorf("reason %q does not mention %q", errs[0].Err, w)
				}
			}
		})
	}
	t.Run("names differing only in case", func(t *testing.T) {
		dir := writeApp(t, map[string]string{"host.json": goodHost, "Good/function.json": httpFn, "GOOD/function.json": httpFn})
		h, err := Load(dir, Options{Environ: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		// Folders load in name order, so GOOD loads and Good is the duplicate.
		if errs := h.FunctionErrors(); len(errs) != 1 || errs[0].Name != "Good" || !strings.Contains(errs[0].Err.Error(), "only in case") {
			t.Errorf("function errors %+v, want Good as a duplicate of GOOD", errs)
		}
	})
}

func TestSettingsPrecedenceAndHostOverrides(t *testing.T) {
	dir := writeApp(t, map[string]string{
		"host.json": `{"version":"2.0","customHandler":{"description":{"defaultExecutablePath":"handler","arguments":["%A%","x"]}},
			"extensions":{"queues":{"maxDequeueCount":5,"batchSize":8}}}`,
		"local.settings.json": `{"Values":{"A":"from values","B":"only values",
			"AzureFunctionsJobHost__extensions__queues__batchSize":"4",
			"AzureFunctionsJobHost__customHandler__description__arguments__1":"y",
			"AzureWebJobs.F.Disabled":"true"},"Host":{"LocalHttpPort":7123}}`,
		"F/function.json": httpFn,
	})
	a, err := loadApp(dir, []string{"A=from env", "AzureFunctionsJobHost__extensions__queues__maxDequeueCount=7",
		"AzureFunctionsJobHost__extensions__http__routePrefix="})
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"environment wins over Values", mustGet(a.settings, "A"), "from env"},
		{"Values fill in", mustGet(a.settings, "b"), "only values"},
		{"override from environment", a.queues.MaxDequeueCount, 7},
		{"override from Values", a.queues.BatchSize, 4},
		{"array element override and %expansion%", strings.Join(a.args, ","), "from env,y"},
		{"route prefix removed", a.prefix, ""},
		{"LocalHttpPort", a.localPort, 7123},
		{"disabled by setting", a.functions[0].Disabled, true},
		{"default visibilityTimeout", a.queues.VisibilityTimeout, time.Duration(0)},
		{"default timeout (non-Consumption)", a.timeout, 30 * time.Minute},
		{"exe resolved as a command when absent", a.exe, "handler"},
		{"handler env keeps the environment's A", countEnv(a.env, "A="), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func mustGet(s settings, k string) string { v, _ := s.get(k); return v }

func countEnv(env []string, prefix string) int {
	n := 0
	for _, e := range env {
		if strings.HasPrefix(e, prefix) {
			n++
		}
	}
	return n
}

func TestParseTimeSpan(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"00:00:30", 30 * time.Second, true},
		{"00:05:00", 5 * time.Minute, true},
		{"00:00:00.100", 100 * time.Millisecond, true},
		{"1.02:00:00", 26 * time.Hour, true},
		{"02:30", 2*time.Hour + 30*time.Minute, true},
		{"-00:00:01", -time.Second, true},
		{"2", 48 * time.Hour, true},
		{"00:61:00", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range tests {
		got, err := parseTimeSpan(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseTimeSpan(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestRouteMatching(t *testing.T) {
	tests := []struct {
		tmpl, path string
		want       map[string]string // nil: no match
	}{
		{"api/products/{id:int?}", "/api/products", map[string]string{}},
		{"api/products/{id:int?}", "/api/products/5", map[string]string{"id": "5"}},
		{"api/products/{id:int?}", "/API/Products/5/", map[string]string{"id": "5"}},
		{"api/products/{id:int?}", "/api/products/x", nil},
		{"api/products/{id:int?}", "/api/products/5/6", nil},
		{"api/products/{id:int?}", "/api/products/99999999999", nil},
		{"api/files/{*rest}", "/api/files", map[string]string{}},
		{"api/files/{*rest}", "/api/files/a/b%20c", map[string]string{"rest": "a/b c"}},
		{"api/{name:alpha:minlength(2)}", "/api/ab", map[string]string{"name": "ab"}},
		{"api/{name:alpha:minlength(2)}", "/api/a", nil},
		{"api/{n:range(1,10)}", "/api/10", map[string]string{"n": "10"}},
		{"api/{n:range(1,10)}", "/api/11", nil},
		{"api/{g:guid}", "/api/0f8fad5b-d9cb-469f-a165-70867728950e", map[string]string{"g": "0f8fad5b-d9cb-469f-a165-70867728950e"}},
		{"api/{code:regex(^[a-z]{{3}}$)}", "/api/abc", nil}, // escaped braces unsupported: must not match oddly
		{"api/{code:regex(^ab+$)}", "/api/ABB", map[string]string{"code": "ABB"}},
		{"api/{page=1}", "/api", map[string]string{"page": "1"}},
		{"api/{b:bool}", "/api/True", map[string]string{"b": "True"}},
		{"", "/", map[string]string{}},
	}
	for _, tc := range tests {
		r, err := parseRoute(tc.tmpl)
		if err != nil {
			if tc.want == nil {
				continue
			}
			t.Fatalf("parseRoute(%q): %v", tc.tmpl, err)
		}
		segs, _ := pathSegments(tc.path)
		got, ok := r.match(segs)
		if ok != (tc.want != nil) {
			t.Errorf("%q matching %q: ok=%v, want %v", tc.tmpl, tc.path, ok, tc.want != nil)
			continue
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%q matching %q: %s=%q, want %q", tc.tmpl, tc.path, k, got[k], v)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%q matching %q: values %v, want %v", tc.tmpl, tc.path, got, tc.want)
		}
	}
}

func TestRoutePrecedence(t *testing.T) {
	parse := func(s string) *route {
		r, err := parseRoute(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct{ first, second string }{
		{"api/products/special", "api/products/{id}"},
		{"api/products/{id:int}", "api/products/{id}"},
		{"api/products/{id}", "api/{*rest}"},
	}
	for _, tc := range tests {
		if !parse(tc.first).less(parse(tc.second)) || parse(tc.second).less(parse(tc.first)) {
			t.Errorf("%q should take precedence over %q", tc.first, tc.second)
		}
	}
}

func TestQueueOutputMessages(t *testing.T) {
	h := &Host{app: &app{queues: queueOptions{MessageEncoding: "base64"}}, log: &logger{w: &syncBuffer{}}}
	fn := &function{Name: "F"}
	tests := []struct {
		name, value string
		binary      bool
		want        []string
	}{
		{"string", `"hello world"`, false, []string{"hello world"}},
		{"object", `{ "a": 1,  "b": [1, 2] }`, false, []string{`{"a":1,"b":[1,2]}`}},
		{"array of mixed", `["one message", {"k":"v"}, 3]`, false, []string{"one message", `{"k":"v"}`, "3"}},
		{"string holding a JSON array", `"[\"x y\", \"z w\"]"`, false, []string{"x y", "z w"}},
		{"null", `null`, false, nil},
		{"valid base64 string is decoded (host gotcha)", `"abcd"`, false, []string{"i\xb7\x1d"}},
		{"binary dataType keeps the text", `"abcd"`, true, []string{"abcd"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := &binding{Name: "out"}
			if tc.binary {
				o.DataType = "binary"
			}
			got, err := h.queueMessages(fn, o, json.RawMessage(tc.value))
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, g := range got {
				gs = append(gs, string(g))
			}
			if strings.Join(gs, "|") != strings.Join(tc.want, "|") || len(gs) != len(tc.want) {
				t.Errorf("got %q, want %q", gs, tc.want)
			}
		})
	}
	if got := h.encodeMessage([]byte("hi")); got != "aGk=" {
		t.Errorf("base64 encoding: %q", got)
	}
	h.app.queues.MessageEncoding = "none"
	if got := h.encodeMessage([]byte("hi")); got != "hi" {
		t.Errorf("none encoding: %q", got)
	}
}

func TestParseHTTPOutput(t *testing.T) {
	tests := []struct {
		name, value string
		status      int
		ctype, body string
		wantErr     bool
	}{
		{"numeric string status", `{"statusCode":"201","body":"made"}`, 201, "text/plain; charset=utf-8", "made", false},
		{"number status and header", `{"statusCode":404,"headers":{"Content-Type":"application/problem+json"},"body":"{}"}`, 404, "application/problem+json", "{}", false},
		{"object body", `{"body":{"a":1}}`, 200, "application/json; charset=utf-8", `{"a":1}`, false},
		{"not an object", `"oops"`, 0, "", "", true},
		{"bad status", `{"statusCode":"abc"}`, 0, "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := parseHTTPOutput(json.RawMessage(tc.value))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if r.status != tc.status || r.headers["Content-Type"] != tc.ctype || string(r.body) != tc.body {
				t.Errorf("got %d %q %q", r.status, r.headers["Content-Type"], r.body)
			}
		})
	}
}

func TestConnectionString(t *testing.T) {
	a := &app{settings: settings{
		"azurewebjobsstorage":    "UseDevelopmentStorage=true",
		"mine":                   "DefaultEndpointsProtocol=http;AccountName=x;AccountKey=eA==;QueueEndpoint=http://127.0.0.1:1/x;",
		"azurewebjobsprefixed":   "UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://127.0.0.1",
		"ident__queueserviceuri": "https://acct.queue.core.windows.net",
	}}
	tests := []struct {
		name, want string
		wantErr    bool
	}{
		{"", DevelopmentStorage, false},
		{"Mine", "DefaultEndpointsProtocol=http;AccountName=x;AccountKey=eA==;QueueEndpoint=http://127.0.0.1:1/x;", false},
		{"Prefixed", DevelopmentStorage, false}, // AzureWebJobs<name> is tried first
		{"Ident", "", true},
		{"Missing", "", true},
	}
	for _, tc := range tests {
		got, err := a.connectionString(tc.name)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("connectionString(%q) = %q, %v", tc.name, got, err)
		}
	}
}

func TestPollingBackoffStaysInBounds(t *testing.T) {
	limit := 2 * time.Second
	d := time.Duration(0)
	for i := range 30 {
		d = nextDelay(d, limit)
		if d < minPollingInterval || d > limit {
			t.Fatalf("step %d: delay %v outside [%v, %v]", i, d, minPollingInterval, limit)
		}
	}
	if d != limit {
		t.Errorf("after 30 empty polls delay = %v, want the maximum %v", d, limit)
	}
}

func TestTimerSchedules(t *testing.T) {
	tests := []struct {
		expr       string
		ok         bool
		useMonitor bool
	}{
		{"*/2 * * * * *", true, false},
		{"0 0 0 * * *", true, true},
		{"0 */5 * * * Mon-Fri", true, true},
		{"*/5 * * * *", true, true}, // five fields: second 0 added
		{"00:00:30", true, false},
		{"not a schedule", false, false},
		{"0 0 25 * * *", false, false},
	}
	for _, tc := range tests {
		spec, err := parseTimer(tc.expr, settings{})
		if (err == nil) != tc.ok {
			t.Errorf("parseTimer(%q): %v", tc.expr, err)
			continue
		}
		if err == nil && spec.useMonitor != tc.useMonitor {
			t.Errorf("parseTimer(%q).useMonitor = %v", tc.expr, spec.useMonitor)
		}
	}
	spec, _ := parseTimer("0 30 9 * * *", settings{})
	next := spec.sched.Next(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC))
	if want := time.Date(2025, 3, 2, 9, 30, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("next = %v, want %v (UTC)", next, want)
	}
}
