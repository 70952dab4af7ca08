package main

import (
	"strings"
	"testing"
	"time"
)

func TestReportReadGoal(t *testing.T) {
	m := func(rps float64) measurement { return measurement{RPS: rps} }
	row := func(via string, rps, base, minimal float64, rtt time.Duration) apiRow {
		return apiRow{Op: "GET /api/products/{id}", Read: true, Via: via, C: 1, M: m(rps), Base: m(base), Minimal: m(minimal), DBRTT: rtt}
	}
	tests := []struct {
		name      string
		rows      []apiRow
		missed    int
		farMet    bool
		inReport  []string
		notInRept []string
	}{
		{"goal met everywhere", []apiRow{row("direct", 60, 100, 70, 0), row("direct", 90, 100, 95, time.Millisecond)}, 0, true,
			[]string{"| 0.60 | ≥ 0.5 | yes | 70 | 0.86 |", "one network hop away"}, []string{"Reads below the goal"}},
		{"missed on loopback, met far", []apiRow{row("direct", 25, 100, 30, 0), row("devhost", 10, 100, 30, 0), row("direct", 80, 100, 85, time.Millisecond)}, 1, true,
			[]string{"the minimal server reaches 0.30 of the baseline, and the handler 0.83 of the minimal server", "every read row meets it"}, nil},
		{"missed where the minimal server meets it", []apiRow{row("direct", 25, 100, 80, 0)}, 1, true,
			[]string{"the gap is dualsync's own cost"}, []string{"the gap is HTTP itself"}},
		{"missed far too", []apiRow{row("direct", 25, 100, 30, 0), row("direct", 40, 100, 85, time.Millisecond)}, 1, false,
			[]string{"not every read row meets it either", "| 0.40 | ≥ 0.5 | **no** |"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &report{API: tc.rows, PoolSize: 4}
			if missed, _ := r.missedReads(); len(missed) != tc.missed {
				got := len(missed)
				t.Errorf("missedReads: %d rows, want %d", got, tc.missed)
			}
			if got := r.readsMet(func(a apiRow) bool { return a.DBRTT > 0 }); got != tc.farMet {
				t.Errorf("readsMet far = %v, want %v", got, tc.farMet)
			}
			md := r.markdown()
			for _, s := range tc.inReport {
				if !strings.Contains(md, s) {
					t.Errorf("report lacks %q", s)
				}
			}
			for _, s := range tc.notInRept {
				if strings.Contains(md, s) {
					t.Errorf("report has %q", s)
				}
			}
		})
	}
}
