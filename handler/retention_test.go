package main

import (
	"testing"
	"time"
)

func TestRetentionSetting(t *testing.T) {
	const def = 5 * time.Hour
	for _, tc := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"", def, true},
		{"30d", 30 * 24 * time.Hour, true},
		{" 7d ", 7 * 24 * time.Hour, true},
		{"720h", 720 * time.Hour, true},
		{"90s", 90 * time.Second, true},
		{"0d", 0, false},
		{"-1d", 0, false},
		{"xd", 0, false},
		{"0s", 0, false},
		{"forever", 0, false},
	} {
		got, err := retention(func(string) string { return tc.v }, "RUN_RETENTION", def)
		if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
			t.Errorf("RUN_RETENTION=%q: %v, %v; want %v, ok %v", tc.v, got, err, tc.want, tc.ok)
		}
	}
}
