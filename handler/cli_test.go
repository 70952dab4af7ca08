package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"dualsync/internal/testenv"
)

// Help and mistakes answer at once: no setting is read, so no database is
// opened (the URLs here would only time out).
func TestHelpAndUnknownCommandsTouchNothing(t *testing.T) {
	tests := []struct {
		args    []string
		ok      bool
		mention string
	}{
		{[]string{"--help"}, true, "usage: handler"},
		{[]string{"-h"}, true, "usage: handler"},
		{[]string{"help"}, true, "usage: handler"},
		{[]string{"migrate", "-h"}, true, "usage: handler"},
		{[]string{"bogus"}, false, `unknown command "bogus"`},
		{[]string{"--version"}, false, `unknown command "--version"`},
		{[]string{"migrate", "-nope"}, false, "flag provided but not defined"},
		{[]string{"seed", "extra"}, false, "takes no arguments"},
		{[]string{"serve", "x"}, false, "takes no arguments"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var read []string
			getenv := func(k string) string {
				read = append(read, k)
				return "postgres://postgres@10.255.255.1:5432/x?connect_timeout=60"
			}
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, getenv, &out, &errb)
			if (err == nil) != tc.ok {
				t.Fatalf("err = %v, want ok %v", err, tc.ok)
			}
			text := out.String()
			if err != nil {
				text = err.Error()
			}
			if !strings.Contains(text, tc.mention) {
				t.Errorf("answer %q lacks %q", text, tc.mention)
			}
			if !tc.ok && !strings.Contains(text, "usage: handler") {
				t.Errorf("a mistake should show the usage: %q", text)
			}
			if len(read) > 0 {
				t.Errorf("read settings %v before answering", read)
			}
		})
	}
}

// migrate and seed by hand read local.settings.json (the current
// directory's, or -settings FILE); the environment wins and is named.
func TestMigrateReadsLocalSettings(t *testing.T) {
	primary, fallback := testenv.CreateDatabase(t), testenv.CreateDatabase(t)
	dir := t.TempDir()
	write := func(name string, values map[string]string) string {
		b, _ := json.Marshal(map[string]any{"IsEncrypted": false, "Values": values})
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A URL nothing answers at: it must never be used.
	dead := "postgres://postgres@127.0.0.1:1/nope?sslmode=disable"
	write("local.settings.json", map[string]string{"PRIMARY_DATABASE_URL": primary, "FALLBACK_DATABASE_URL": fallback})
	other := write("other.json", map[string]string{"PRIMARY_DATABASE_URL": dead, "FALLBACK_DATABASE_URL": fallback})
	noEnv := func(string) string { return "" }

	t.Chdir(dir)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, noEnv, &out, &errb); err != nil {
		t.Fatalf("migrate from ./local.settings.json: %v %s", err, errb.String())
	}
	if strings.Count(out.String(), "migrate done") != 2 {
		t.Errorf("output %q", out.String())
	}

	// -settings names another file; the environment's primary wins over it.
	out.Reset()
	errb.Reset()
	env := func(k string) string {
		if k == "PRIMARY_DATABASE_URL" {
			return primary
		}
		return ""
	}
	if err := run(context.Background(), []string{"seed", "-settings", other}, env, &out, &errb); err != nil {
		t.Fatalf("seed -settings: %v %s", err, errb.String())
	}
	want := "Skipping 'PRIMARY_DATABASE_URL' from " + other + " as it's already defined in current environment variables."
	if !strings.Contains(errb.String(), want) || strings.Contains(errb.String(), "'FALLBACK_DATABASE_URL'") {
		t.Errorf("stderr %q, want exactly the primary named:\n%s", errb.String(), want)
	}
	if strings.Count(out.String(), "seed done") != 2 {
		t.Errorf("output %q", out.String())
	}
	if err := run(context.Background(), []string{"migrate", "-settings", filepath.Join(dir, "missing.json")}, noEnv, &out, &errb); err == nil {
		t.Error("a -settings file that does not exist was ignored")
	}
}
