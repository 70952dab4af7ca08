package faultproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// A busy fault answers 503 ServerBusy without serving; a dropped answer is
// served and then lost; a failed one is served and answered 500; and the
// counts say so by request kind.
func TestScriptedFaults(t *testing.T) {
	var served atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		io.WriteString(w, "ok")
	}))
	defer backend.Close()
	p, err := Start(strings.TrimPrefix(backend.URL, "http://"), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() (*http.Response, error) {
		return c.Get("http://" + p.Addr() + "/devstoreaccount1/q/messages")
	}

	p.Next(FaultBusy, nil)
	resp, err := get()
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("x-ms-error-code") != "ServerBusy" || served.Load() != 0 {
		t.Fatalf("busy: %v %v, served %d", resp, err, served.Load())
	}
	resp.Body.Close()

	p.Next(FaultDrop, nil)
	if resp, err := get(); err == nil {
		resp.Body.Close()
		t.Fatalf("dropped answer arrived: %d", resp.StatusCode)
	}
	if served.Load() != 1 {
		t.Fatalf("a dropped answer's request was served %d times, want 1", served.Load())
	}

	p.Next(FaultFail, nil)
	resp, err = get()
	if err != nil || resp.StatusCode != http.StatusInternalServerError || served.Load() != 2 {
		t.Fatalf("fail: %v %v, served %d", resp, err, served.Load())
	}
	resp.Body.Close()

	resp, err = get()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("no fault: %v %v", resp, err)
	}
	resp.Body.Close()
	got := p.Counts()
	if got["requests"] != 4 || got["busy GET messages"] != 1 || got["drop GET messages"] != 1 || got["fail"] != 1 || p.Pending() != 0 {
		t.Errorf("counts %v", got)
	}
}
