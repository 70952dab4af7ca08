package devhost

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// Each local.settings.json value that the environment overrides is named
// once at start-up, in Core Tools' words; the environment's value is the
// one the handler gets, and values the environment leaves alone are not
// mentioned.
func TestLoadLogsOverriddenSettings(t *testing.T) {
	var out bytes.Buffer
	h, err := Load(filepath.Join("testdata", "apps", "basic"), Options{
		Environ: []string{"PATH=/usr/bin", "GREETING=from the environment", "WorkQueue=work2"},
		Stdout:  &out, Stderr: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	log := out.String()
	for _, k := range []string{"GREETING", "WorkQueue"} {
		want := "Skipping '" + k + "' from local.settings.json as it's already defined in current environment variables."
		if strings.Count(log, want) != 1 {
			t.Errorf("log lacks %q once:\n%s", want, log)
		}
	}
	for _, k := range []string{"DoneQueue", "PATH", "FUNCTIONS_WORKER_RUNTIME"} {
		if strings.Contains(log, "'"+k+"'") {
			t.Errorf("log names %s, which the environment does not override:\n%s", k, log)
		}
	}
	if v, _ := h.app.settings.get("GREETING"); v != "from the environment" {
		t.Errorf("GREETING = %q, want the environment's", v)
	}
	if v, _ := h.app.settings.get("DoneQueue"); v != "done" {
		t.Errorf("DoneQueue = %q, want local.settings.json's", v)
	}
}
