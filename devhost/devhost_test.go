package devhost

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// baseEnv gives each test its own queues on the package's Azurite.
func baseEnv(t *testing.T) map[string]string {
	return map[string]string{
		"AzureWebJobsStorage": azurite(t),
		"WorkQueue":           uniqueQueue("work"),
		"DoneQueue":           uniqueQueue("done"),
		"FailQueue":           uniqueQueue("fail"),
		"OutQueue":            uniqueQueue("out"),
		"TimerLog":            uniqueQueue("timers"),
	}
}

func TestHTTPForwarded(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	delete(env, "WorkQueue") // keep the Values entry, to see Values reach the handler
	env["GREETING"] = "from the environment"
	rt := startHost(t, dir, env, Options{})

	tests := []struct {
		name, method, path, body string
		status                   int
		wantPath, wantQuery      string
	}{
		{"route with optional omitted", "GET", "/api/hello/World", "", 201, "/api/hello/World", ""},
		{"optional int, query and body", "POST", "/api/hello/World/42?x=1&y=a%20b", "hi there", 201, "/api/hello/World/42", "x=1&y=a%20b"},
		{"trailing slash", "GET", "/api/hello/World/", "", 201, "/api/hello/World/", ""},
		{"alpha constraint", "GET", "/api/hello/W0rld", "", 404, "", ""},
		{"int constraint", "GET", "/api/hello/World/abc", "", 404, "", ""},
		{"method not in list", "DELETE", "/api/hello/World", "", 404, "", ""},
		{"no route", "GET", "/api/nothing", "", 404, "", ""},
		{"no prefix", "GET", "/hello/World", "", 404, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, rt.h.URL()+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := readAll(t, resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tc.status, body)
			}
			if tc.status != 201 {
				return
			}
			if resp.Header.Get("X-Handler") != "yes" {
				t.Errorf("X-Handler header = %q, want the handler's raw response", resp.Header.Get("X-Handler"))
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(body), &got); err != nil {
				t.Fatalf("body %q: %v", body, err)
			}
			want := map[string]any{
				"method": tc.method, "path": tc.wantPath, "query": tc.wantQuery, "body": tc.body,
				"greeting": "from the environment", "arg": "from the environment", "workQueue": "work", "appRoot": dir,
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v", k, got[k], v)
				}
			}
			if got["invocationId"] == "" || got["workerId"] == "" {
				t.Errorf("invocation id %v / worker id %v missing", got["invocationId"], got["workerId"])
			}
		})
	}
}

func TestHTTPEnvelopeAndQueueOutput(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	rt := startHost(t, dir, env, Options{})

	req, _ := http.NewRequest("POST", rt.h.URL()+"/api/echo/a/b%20c?x=1&x=2", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("X-Test", "v")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := readAll(t, resp.Body)
	if resp.StatusCode != 202 || resp.Header.Get("X-Echo") != "1" || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, X-Echo %q, Content-Type %q; body %s", resp.StatusCode, resp.Header.Get("X-Echo"), resp.Header.Get("Content-Type"), body)
	}
	var got struct {
		Req struct {
			Url, Method, Body string
			Query             map[string]string
			Headers           map[string][]string
			Params            map[string]string
		}
		Meta struct {
			Sys struct{ MethodName string } `json:"sys"`
		}
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	checks := []struct{ name, got, want string }{
		{"Url", got.Req.Url, rt.h.URL() + "/api/echo/a/b%20c?x=1&x=2"},
		{"Method", got.Req.Method, "POST"},
		{"Body", got.Req.Body, `{"k":"v"}`},
		{"Query.x", got.Req.Query["x"], "1,2"},
		{"Headers.X-Test", strings.Join(got.Req.Headers["X-Test"], "|"), "v"},
		{"Params.rest", got.Req.Params["rest"], "a/b c"},
		{"Metadata.sys.MethodName", got.Meta.Sys.MethodName, "Echo"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	msgs := collect(t, queueOf(t, env["AzureWebJobsStorage"], env["OutQueue"]), 2, 10*time.Second)
	want := []string{"plain message one", `{"kind":"object","n":1}`}
	if strings.Join(msgs, "\n") != strings.Join(want, "\n") {
		t.Errorf("output messages = %q, want %q", msgs, want)
	}
}

type workResult struct {
	Got, Raw, DequeueCount, ID, InsertionTime string
	HasSys                                    bool
}

func TestQueueTrigger(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	rt := startHost(t, dir, env, Options{})
	conn := env["AzureWebJobsStorage"]
	work := queueOf(t, conn, env["WorkQueue"])
	done := queueOf(t, conn, env["DoneQueue"])

	texts := []string{"hello queue", `{"entity":"product","id":42}`}
	for _, s := range texts {
		enqueue(t, work, b64(s))
	}
	byText := map[string]workResult{}
	for _, m := range collect(t, done, len(texts), 15*time.Second) {
		var r workResult
		if err := json.Unmarshal([]byte(m), &r); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		byText[r.Got] = r
	}
	for _, s := range texts {
		r, ok := byText[s]
		if !ok {
			t.Fatalf("no result for %q in %v", s, byText)
		}
		// Data.msg is the message text serialised twice (the host serialises it once more).
		inner, _ := json.Marshal(s)
		outer, _ := json.Marshal(string(inner))
		if r.Raw != string(outer) {
			t.Errorf("Data.msg = %s, want %s", r.Raw, outer)
		}
		if r.DequeueCount != `"1"` || !strings.HasPrefix(r.ID, `"\"`) || !strings.HasSuffix(r.InsertionTime, `+00:00"`) || !r.HasSys {
			t.Errorf("metadata DequeueCount=%s Id=%s InsertionTime=%s sys=%v", r.DequeueCount, r.ID, r.InsertionTime, r.HasSys)
		}
	}

	t.Run("manual run through the admin API", func(t *testing.T) {
		resp, err := http.Post(rt.h.URL()+"/admin/functions/Work", "application/json", strings.NewReader(`{"input":"manual"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("status %d, want 202", resp.StatusCode)
		}
		m := collect(t, done, 1, 10*time.Second)
		if !strings.Contains(m[0], `"got":"manual"`) {
			t.Errorf("manual run output = %s", m[0])
		}
	})

	t.Run("a message that is not base64 fails and ends in poison", func(t *testing.T) {
		enqueue(t, work, "not base64!")
		poison := queueOf(t, conn, env["WorkQueue"]+"-poison")
		var got []string
		waitFor(t, 20*time.Second, "poison message", func() bool { got = append(got, drain(t, poison)...); return len(got) > 0 })
		if got[0] != "not base64!" {
			t.Errorf("poison text = %q", got[0])
		}
	})
}

func TestQueuePoisonAfterMaxDequeueCount(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	rt := startHost(t, dir, env, Options{})
	conn := env["AzureWebJobsStorage"]
	original := b64(`{"order":7,"note":"always fails"}`)
	enqueue(t, queueOf(t, conn, env["FailQueue"]), original)

	poison := queueOf(t, conn, env["FailQueue"]+"-poison")
	var got []string
	waitFor(t, 30*time.Second, "poison message", func() bool { got = append(got, drain(t, poison)...); return len(got) > 0 })
	if len(got) != 1 || got[0] != original {
		t.Errorf("poison queue holds %q, want exactly [%q]", got, original)
	}
	// maxDequeueCount is 3 in the test app's host.json.
	time.Sleep(500 * time.Millisecond) // a fourth attempt would show up by now
	invs := rt.rec.of("Fail")
	if len(invs) != 3 {
		t.Fatalf("Fail ran %d times, want exactly 3", len(invs))
	}
	for _, i := range invs {
		if i.Err == nil {
			t.Errorf("invocation %s succeeded; the handler always fails", i.ID)
		}
	}
	if !strings.Contains(rt.log.String(), "Moving message to queue '"+env["FailQueue"]+"-poison'") {
		t.Errorf("no poison log line")
	}
}

func TestQueueLeaseIsRenewedWhileProcessing(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	// A 1 s lease renewed every 0.5 s; the handler takes 2.5 s. Without
	// renewal the message would be delivered a second time meanwhile.
	rt := startHost(t, dir, env, Options{QueueLease: time.Second})
	conn := env["AzureWebJobsStorage"]
	enqueue(t, queueOf(t, conn, env["WorkQueue"]), b64("sleep:2500"))
	m := collect(t, queueOf(t, conn, env["DoneQueue"]), 1, 15*time.Second)
	var r workResult
	if err := json.Unmarshal([]byte(m[0]), &r); err != nil || r.DequeueCount != `"1"` {
		t.Errorf("result %s (%v): want DequeueCount 1", m[0], err)
	}
	time.Sleep(time.Second)
	if n := len(rt.rec.of("Work")); n != 1 {
		t.Errorf("Work ran %d times, want 1", n)
	}
}

func TestShutdownWithMessageInFlight(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	rt := startHost(t, dir, env, Options{})
	conn := env["AzureWebJobsStorage"]
	work := queueOf(t, conn, env["WorkQueue"])
	enqueue(t, work, b64("sleep:1500"))
	waitFor(t, 15*time.Second, "the invocation to start", func() bool {
		return strings.Contains(rt.log.String(), "Executing 'Functions.Work'")
	})
	if err := rt.stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	invs := rt.rec.of("Work")
	if len(invs) != 1 || invs[0].Err != nil {
		t.Fatalf("in-flight invocation did not complete: %+v", invs)
	}
	// Completed: its output was written and the message deleted, not lost.
	m := collect(t, queueOf(t, conn, env["DoneQueue"]), 1, 5*time.Second)
	if !strings.Contains(m[0], "sleep:1500") {
		t.Errorf("output %s", m[0])
	}
	props, err := work.GetProperties(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := props.ApproximateMessagesCount; n == nil || *n != 0 {
		t.Errorf("work queue still holds %v message(s)", n)
	}
}

func TestFunctionTimeout(t *testing.T) {
	dir := newApp(t, "basic")
	rt := startHost(t, dir, baseEnv(t), Options{})
	start := time.Now()
	resp, err := http.Get(rt.h.URL() + "/api/slow")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("status %d, want 500", resp.StatusCode)
	}
	if time.Since(start) > 9*time.Second {
		t.Errorf("took %v: the 3 s functionTimeout did not cut the 10 s handler", time.Since(start))
	}
	invs := rt.rec.of("Slow")
	if len(invs) != 1 || invs[0].Err == nil || !strings.Contains(invs[0].Err.Error(), "Timeout value of 00:00:03") {
		t.Fatalf("invocations %+v, want one timeout failure", invs)
	}
	if !strings.Contains(rt.log.String(), "Executed 'Functions.Slow' (Failed, Id="+invs[0].ID) {
		t.Errorf("no failure log line")
	}
}

type timerMsg struct {
	Fn    string
	Timer struct {
		Schedule       struct{ AdjustForDST bool }
		ScheduleStatus *struct{ Last, Next, LastUpdated string }
		IsPastDue      bool
	}
}

func TestTimerTrigger(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	env["AzureWebJobs.Tick.Disabled"] = "false" // the environment wins over Values
	env["AzureWebJobs.Nightly.Disabled"] = "false"
	rt := startHost(t, dir, env, Options{})
	log := queueOf(t, env["AzureWebJobsStorage"], env["TimerLog"])

	waitFor(t, 15*time.Second, "two Tick invocations", func() bool { return len(rt.rec.of("Tick")) >= 2 })
	for _, inv := range rt.rec.of("Tick") {
		// */2 fires on even seconds; allow generous lateness (noisy machines).
		if late := inv.Start.Sub(inv.Start.Truncate(2 * time.Second)); late > 1500*time.Millisecond {
			t.Errorf("Tick started %v after its occurrence", late)
		}
		if inv.Err != nil || !strings.HasPrefix(inv.Reason, "Timer fired at ") {
			t.Errorf("Tick invocation %+v", inv)
		}
	}
	nightly := rt.rec.of("Nightly")
	if len(nightly) != 1 {
		t.Fatalf("Nightly (runOnStartup) ran %d times, want 1", len(nightly))
	}

	var msgs []timerMsg
	for _, m := range collect(t, log, 3, 10*time.Second) {
		var tm timerMsg
		if err := json.Unmarshal([]byte(m), &tm); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		msgs = append(msgs, tm)
	}
	var sawNightly, sawTick bool
	for _, m := range msgs {
		if !m.Timer.Schedule.AdjustForDST || m.Timer.IsPastDue {
			t.Errorf("%s: TimerInfo %+v", m.Fn, m.Timer)
		}
		switch m.Fn {
		case "Nightly": // daily schedule: monitored, first run has no Last
			sawNightly = true
			if s := m.Timer.ScheduleStatus; s == nil || s.Last != "0001-01-01T00:00:00" || !strings.HasSuffix(s.Next, "T00:00:00+00:00") {
				t.Errorf("Nightly ScheduleStatus = %+v", s)
			}
		case "Tick": // sub-minute schedule: no monitor
			sawTick = true
			if m.Timer.ScheduleStatus != nil {
				t.Errorf("Tick ScheduleStatus = %+v, want null", m.Timer.ScheduleStatus)
			}
		}
	}
	if !sawNightly || !sawTick {
		t.Errorf("timer log lacks Nightly (%v) or Tick (%v)", sawNightly, sawTick)
	}

	t.Run("admin API", func(t *testing.T) {
		tests := []struct {
			fn     string
			status int
		}{{"Nightly", 202}, {"nightly", 202}, {"Nope", 404}, {"Hello", 400}}
		for _, tc := range tests {
			resp, err := http.Post(rt.h.URL()+"/admin/functions/"+tc.fn, "application/json", strings.NewReader(`{"input":""}`))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("%s: status %d, want %d", tc.fn, resp.StatusCode, tc.status)
			}
		}
		waitFor(t, 10*time.Second, "two manual Nightly runs", func() bool {
			n := 0
			for _, i := range rt.rec.of("Nightly") {
				if i.Reason == reasonHostAPI && i.Err == nil {
					n++
				}
			}
			return n == 2
		})
	})
}

func TestHandlerIsRestartedWhenItDies(t *testing.T) {
	dir := newApp(t, "basic")
	rt := startHost(t, dir, baseEnv(t), Options{})
	pid := func() float64 {
		resp, err := http.Get(rt.h.URL() + "/api/hello/World")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		p, _ := m["pid"].(float64)
		return p
	}
	before := pid()
	resp, err := http.Post(rt.h.URL()+"/api/crash", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("crash: status %d, want 500", resp.StatusCode)
	}
	waitFor(t, 20*time.Second, "the restarted handler", func() bool { p := pid(); return p != 0 && p != before })
	if !strings.Contains(rt.log.String(), "exited unexpectedly") {
		t.Errorf("no restart log line")
	}
}
