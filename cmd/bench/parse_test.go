package main

import (
	"strings"
	"testing"
	"time"
)

// heySample is hey v0.1.5's summary as printed (it really prints "%%").
const heySample = `
Summary:
  Total:	0.0242 secs
  Slowest:	0.0091 secs
  Fastest:	0.0007 secs
  Average:	0.0024 secs
  Requests/sec:	827.0783
  
  Total data:	22540 bytes
  Size/request:	1127 bytes

Response time histogram:
  0.001 [1]	|■■■■
  0.009 [2]	|■■■■■■■

Latency distribution:
  10%% in 0.0009 secs
  50%% in 0.0013 secs
  99%% in 0.0091 secs

Details (average, fastest, slowest):
  DNS+dialup:	0.0005 secs, 0.0000 secs, 0.0072 secs
  resp read:	0.0002 secs, 0.0000 secs, 0.0012 secs

Status code distribution:
  [200]	17 responses
  [503]	2 responses

Error distribution:
  [3]	Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused
`

func TestParseHeySummary(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantErr  bool
		rps      float64
		p50, p99 time.Duration
		status   map[int]int
		errors   int
	}{
		{name: "full summary", in: heySample, rps: 827.0783, p50: 1300 * time.Microsecond, p99: 9100 * time.Microsecond,
			status: map[int]int{200: 17, 503: 2}, errors: 3},
		{name: "single percent sign", in: "Requests/sec:\t10.5\n\nLatency distribution:\n  50% in 0.0100 secs\n\nStatus code distribution:\n  [201]\t4 responses\n",
			rps: 10.5, p50: 10 * time.Millisecond, status: map[int]int{201: 4}},
		{name: "no summary", in: "error: something went wrong\n", wantErr: true},
		{name: "responses without latencies", in: "Requests/sec:\t1\nStatus code distribution:\n  [200]\t1 responses\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseHeySummary(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("want an error, got %+v", s)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.RPS != tc.rps || s.Percentiles[50] != tc.p50 || s.Percentiles[99] != tc.p99 || s.Errors != tc.errors {
				t.Errorf("got rps %v p50 %v p99 %v errors %d; want %v %v %v %d", s.RPS, s.Percentiles[50], s.Percentiles[99], s.Errors, tc.rps, tc.p50, tc.p99, tc.errors)
			}
			if len(s.Status) != len(tc.status) {
				t.Fatalf("status %v, want %v", s.Status, tc.status)
			}
			for k, v := range tc.status {
				if s.Status[k] != v {
					t.Errorf("status %v, want %v", s.Status, tc.status)
				}
			}
		})
	}
}

func TestParseProc(t *testing.T) {
	tests := []struct {
		name   string
		stat   string
		ppid   int
		ok     bool
		status string
		hwm    int64
	}{
		{name: "plain", stat: "1234 (handler) S 99 1234 1234 0", ppid: 99, ok: true, status: "Name:\thandler\nVmPeak:\t  9 kB\nVmHWM:\t   12345 kB\n", hwm: 12345 * 1024},
		{name: "spaces and parens in comm", stat: "7 (a) b (c) R 42 7 7", ppid: 42, ok: true, status: "VmHWM: 1 kB\n", hwm: 1024},
		{name: "truncated", stat: "7 (x", ok: false, status: "Name: x\n", hwm: -1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ppid, ok := parsePPID(tc.stat)
			if ok != tc.ok || (ok && ppid != tc.ppid) {
				t.Errorf("parsePPID = %d, %v; want %d, %v", ppid, ok, tc.ppid, tc.ok)
			}
			hwm, err := parseVmHWM(strings.NewReader(tc.status))
			if tc.hwm < 0 {
				if err == nil {
					t.Errorf("parseVmHWM: want an error, got %d", hwm)
				}
				return
			}
			if err != nil || hwm != tc.hwm {
				t.Errorf("parseVmHWM = %d, %v; want %d", hwm, err, tc.hwm)
			}
		})
	}
}

func TestSmallParsers(t *testing.T) {
	tests := []struct {
		name string
		got  any
		want any
	}{
		{"inFlight from host.json", inFlight([]byte(`{"extensions":{"queues":{"batchSize":4,"newBatchThreshold":2}}}`)), 6},
		{"inFlight defaults", inFlight([]byte(`{}`)), 24},
		{"inFlight zero batch", inFlight([]byte(`{"extensions":{"queues":{"batchSize":0,"newBatchThreshold":0}}}`)), 1},
		{"percentile p50", percentile([]time.Duration{5, 1, 4, 2, 3}, 50), time.Duration(3)},
		{"percentile p99", percentile([]time.Duration{5, 1, 4, 2, 3}, 99), time.Duration(5)},
		{"percentile empty", percentile(nil, 50), time.Duration(0)},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	for _, bad := range []string{"", "0", "1,x", "-3"} {
		if _, err := parseInts(bad); err == nil {
			t.Errorf("parseInts(%q): want an error", bad)
		}
	}
	if v, err := parseInts(" 1, 32 "); err != nil || len(v) != 2 || v[0] != 1 || v[1] != 32 {
		t.Errorf("parseInts(\" 1, 32 \") = %v, %v", v, err)
	}
}

func TestParseCPUTime(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		// A real line: utime 153, stime 47 ticks.
		{"handler", "4242 (handler) S 4200 4242 4200 0 -1 4194560 2893 0 0 0 153 47 0 0 20 0 9 0 18251 1278918656 4718 18446744073709551615", 2 * time.Second, false},
		{"spaces and parens in comm", "7 (a) b (c) R 42 7 7 0 -1 0 0 0 0 0 5 0 0 0", 50 * time.Millisecond, false},
		{"too short", "7 (x) S 1 7 7", 0, true},
		{"not a number", "7 (x) S 1 7 7 0 -1 0 0 0 0 0 abc 0", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCPUTime(tc.stat)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Fatalf("parseCPUTime = %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}
