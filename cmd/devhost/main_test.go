package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// app copies devhost's HTTP test app (its queue and timer functions
// disabled, so no storage is needed) and builds its handler into it.
func app(t *testing.T) string {
	t.Helper()
	src := filepath.Join("..", "..", "devhost", "testdata", "apps", "basic")
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "build", "-o", filepath.Join(dst, "handler"), "../../devhost/testdata/handler").CombinedOutput()
	if err != nil {
		t.Fatalf("build handler: %v\n%s", err, out)
	}
	return dst
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestRunServesAppAndStopsCleanly(t *testing.T) {
	dir := app(t)
	port := freePort(t)
	environ := append(os.Environ(), "AzureWebJobs.Work.Disabled=true", "AzureWebJobs.Fail.Disabled=true")
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"-port", fmt.Sprint(port), dir}, environ, out, out) }()

	url := fmt.Sprintf("http://127.0.0.1:%d/api/hello/World", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("GET %s: status %d, want 201", url, resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("devhost did not serve %s: %v\n%s", url, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d, want 0\n%s", c, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("devhost did not stop")
	}
	for _, want := range []string{"Executing 'Functions.Hello'", "Executed 'Functions.Hello' (Succeeded", "Host stopped."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

func TestRunFailures(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"two directories", []string{"a", "b"}, 2, "usage: devhost"},
		{"not an app", []string{t.TempDir()}, 1, "host.json"},
		{"missing keys file", []string{"-keys", filepath.Join(t.TempDir(), "keys.json"), t.TempDir()}, 1, "-keys"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			if c := run(context.Background(), tc.args, nil, &out, &out); c != tc.code {
				t.Errorf("exit code %d, want %d", c, tc.code)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output %q lacks %q", out.String(), tc.want)
			}
		})
	}
}

// -keys FILE makes the binary enforce authLevel: Hello is function level.
func TestRunWithKeys(t *testing.T) {
	dir := app(t)
	keys := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(keys, []byte(`{"masterKey":"M-3j","functionKeys":{"default":"H-8w"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	environ := append(os.Environ(), "AzureWebJobs.Work.Disabled=true", "AzureWebJobs.Fail.Disabled=true")
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"-keys", keys, "-port", fmt.Sprint(port), dir}, environ, out, out) }()
	defer func() { cancel(); <-code }()

	url := fmt.Sprintf("http://127.0.0.1:%d/api/hello/World", port)
	get := func(key string) (int, error) {
		req, _ := http.NewRequest("GET", url, nil)
		if key != "" {
			req.Header.Set("x-functions-key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, err := get("")
		if err == nil {
			if status != http.StatusUnauthorized {
				t.Fatalf("without a key: status %d, want 401", status)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("devhost did not serve %s: %v\n%s", url, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status, err := get("H-8w"); err != nil || status != http.StatusCreated {
		t.Fatalf("with the host key: status %d (%v), want 201", status, err)
	}
}
