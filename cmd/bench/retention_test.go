package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpliceRetention(t *testing.T) {
	rep := &report{Command: "go run ./cmd/bench -retention-only", Retention: []simpleRow{{What: "Delete", Value: "1.00 s", Baseline: "2.00 s", Ratio: "0.50", Goal: "measured", Met: "yes"}}}
	for _, tc := range []struct{ name, in, wantPrefix, wantSuffix string }{
		{"replaced", "# b\n\n## Sync\n\nx\n\n## Retention\n\nold\n\n## Notes from this run\n\n- n\n", "# b\n\n## Sync\n\nx\n\n## Retention\n", "## Notes from this run\n\n- n\n"},
		{"before the notes", "# b\n\n## Sync\n\nx\n\n## Notes from this run\n\n- n\n", "# b\n\n## Sync\n\nx\n\n## Retention\n", "## Notes from this run\n\n- n\n"},
		{"before the method", "# b\n\n## Method\n\n- m\n", "# b\n\n## Retention\n", "## Method\n\n- m\n"},
		{"new file", "", "\n## Retention\n", "| yes |\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "B.md")
			if tc.in != "" {
				if err := os.WriteFile(path, []byte(tc.in), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := spliceRetention(path, rep); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(path)
			got := string(b)
			if !strings.HasPrefix(got, tc.wantPrefix) || !strings.HasSuffix(got, tc.wantSuffix) {
				t.Errorf("got:\n%s", got)
			}
			if strings.Count(got, "## Retention") != 1 || strings.Contains(got, "old") || !strings.Contains(got, "| Delete | 1.00 s | 2.00 s | 0.50 | measured | yes |") {
				t.Errorf("section not exactly once and new:\n%s", got)
			}
		})
	}
}
