package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"dualsync/internal/testenv"
)

func TestLoadSettings(t *testing.T) {
	base := map[string]string{"PRIMARY_DATABASE_URL": "postgres://a", "FALLBACK_DATABASE_URL": "postgres://b"}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr bool
		check   func(settings) bool
	}{
		{"defaults", nil, false, func(s settings) bool {
			return s.Port == "8080" && s.ConnectTimeout == 2*time.Second && s.QueryTimeout == 5*time.Second && s.Cooldown == 5*time.Second
		}},
		{"overrides", map[string]string{"FUNCTIONS_CUSTOMHANDLER_PORT": "9000", "BREAKER_COOLDOWN": "1s", "LOG_LEVEL": "debug"}, false,
			func(s settings) bool {
				return s.Port == "9000" && s.Cooldown == time.Second && s.LogLevel.String() == "DEBUG"
			}},
		{"bad duration", map[string]string{"DB_QUERY_TIMEOUT": "soon"}, true, nil},
		{"bad level", map[string]string{"LOG_LEVEL": "loud"}, true, nil},
		{"missing url", map[string]string{"PRIMARY_DATABASE_URL": ""}, true, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			get := func(k string) string {
				if v, ok := tc.env[k]; ok {
					return v
				}
				return base[k]
			}
			s, err := loadSettings(get)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.check != nil && !tc.check(s) {
				t.Errorf("settings = %+v", s)
			}
		})
	}
}

func TestMigrateAndSeed(t *testing.T) {
	env := map[string]string{"PRIMARY_DATABASE_URL": testenv.CreateDatabase(t), "FALLBACK_DATABASE_URL": testenv.CreateDatabase(t)}
	for _, cmd := range []string{"migrate", "seed", "seed"} {
		var out, errb bytes.Buffer
		if err := run(context.Background(), []string{cmd}, func(k string) string { return env[k] }, &out, &errb); err != nil {
			t.Fatalf("%s: %v %s", cmd, err, errb.String())
		}
		if strings.Count(out.String(), "done") != 2 {
			t.Errorf("%s output %q", cmd, out.String())
		}
	}
	if err := run(context.Background(), []string{"bogus"}, func(k string) string { return env[k] }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Error("unknown command accepted")
	}
}
