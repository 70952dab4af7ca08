package infra

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestPreprovisionHook runs scripts/preprovision.sh (azd's preprovision hook) with the settings a
// first deployment might have: it must stop on an empty or weak PostgreSQL password, a missing
// admin name or client id, or a URL that would replace a Key Vault secret with a broken or
// unverified one; it must pass complete settings; and it must never print a value.
func TestPreprovisionHook(t *testing.T) {
	const adminPW, appPW = "Adm1nPassw0rdXYZ", "AppPassw0rdXYZ9q"
	created := map[string]string{
		"CREATE_DATABASES":        "true",
		"AZURE_PRINCIPAL_NAME":    "ops@example.com",
		"POSTGRES_ADMIN_PASSWORD": adminPW,
		"POSTGRES_APP_PASSWORD":   appPW,
	}
	with := func(base map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range base {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // "" = passes
	}{
		{"created, complete", created, ""},
		{"own databases, nothing set", map[string]string{}, ""},
		{"own databases, verified URL", map[string]string{"AZURE_FALLBACK_DATABASE_URL": "postgres://app:" + appPW + "@db.example.com:5432/d?sslmode=verify-full&sslrootcert=system"}, ""},
		{"admin password unset", with(created, "POSTGRES_ADMIN_PASSWORD", ""), "POSTGRES_ADMIN_PASSWORD is empty"},
		{"app password unset", with(created, "POSTGRES_APP_PASSWORD", ""), "POSTGRES_APP_PASSWORD is empty"},
		{"password too short", with(created, "POSTGRES_APP_PASSWORD", "Ab1"), "8 to 128 characters"},
		{"password of one kind", with(created, "POSTGRES_ADMIN_PASSWORD", "abcdefghijklmnop"), "three of"},
		{"no admin name", with(created, "AZURE_PRINCIPAL_NAME", ""), "AZURE_PRINCIPAL_NAME is empty"},
		{"pipeline without client id", with(created, "AZURE_PRINCIPAL_TYPE", "ServicePrincipal"), "AZURE_PRINCIPAL_CLIENT_ID"},
		{"pipeline with client id", with(created, "AZURE_PRINCIPAL_TYPE", "ServicePrincipal", "AZURE_PRINCIPAL_CLIENT_ID", "00000000-0000-0000-0000-000000000001"), ""},
		{"not a boolean", map[string]string{"CREATE_DATABASES": "yes"}, "true or false"},
		{"own URL with an empty password", map[string]string{"AZURE_FALLBACK_DATABASE_URL": "postgres://app:@db.example.com:5432/d?sslmode=verify-full"}, "empty password"},
		{"own URL without verification", map[string]string{"AZURE_FALLBACK_DATABASE_URL": "postgres://app:" + appPW + "@db.example.com:5432/d?sslmode=require"}, "sslmode=verify-full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", filepath.Join("..", "scripts", "preprovision.sh"))
			cmd.Env = []string{"PATH=/usr/bin:/bin"}
			for k, v := range tc.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want success, got %v:\n%s", err, out)
				}
			} else {
				if err == nil {
					t.Fatalf("want a failure mentioning %q, got success:\n%s", tc.want, out)
				}
				if !strings.Contains(string(out), tc.want) {
					t.Fatalf("output does not mention %q:\n%s", tc.want, out)
				}
			}
			for _, secret := range []string{adminPW, appPW, "Ab1", "abcdefghijklmnop"} {
				if strings.Contains(string(out), secret) {
					t.Fatalf("output shows a password:\n%s", out)
				}
			}
		})
	}
}

// TestPreprovisionHookWired: azd runs the check before every provisioning, on POSIX and Windows.
func TestPreprovisionHookWired(t *testing.T) {
	y := string(readFile(t, "../azure.yaml"))
	hooks := regexp.MustCompile(`(?ms)^hooks:\n  preprovision:\n(.*?)\n\S`).FindStringSubmatch(y + "\nx")
	if hooks == nil {
		t.Fatal("azure.yaml: no project-level hooks.preprovision")
	}
	for _, want := range []string{"run: ./scripts/preprovision.sh", "run: bash ./scripts/preprovision.sh"} {
		if !strings.Contains(hooks[1], want) {
			t.Errorf("azure.yaml hooks.preprovision: want %q", want)
		}
	}
}
