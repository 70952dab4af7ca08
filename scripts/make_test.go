package scripts

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"dualsync/internal/testenv"
)

// makeVar prints what make exports as name to the commands of a target,
// with an environment that does not set it ("" if make exports nothing).
func makeVar(t *testing.T, name string, args ...string) string {
	t.Helper()
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != name && k != "MAKEFLAGS" && k != "MFLAGS" {
			env = append(env, kv)
		}
	}
	cmd := exec.Command("make", append([]string{"-s", "--no-print-directory", "--eval", "printenv-%: ; @printenv $* || true", "printenv-" + name}, args...)...)
	cmd.Dir = testenv.RepoRoot(t)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// `make run` must not shadow local.settings.json: a value the Makefile
// exported would win over the file (the environment wins, as with Core
// Tools), so editing the file, as the README says, would do nothing.
func TestMakeLeavesSettingsToLocalSettingsJSON(t *testing.T) {
	for _, name := range []string{"PRIMARY_DATABASE_URL", "FALLBACK_DATABASE_URL", "SyncStorage", "AzureWebJobsStorage"} {
		if v := makeVar(t, name); v != "" {
			t.Errorf("make exports %s=%q: it would override local.settings.json", name, v)
		}
	}
	cmd := exec.Command("make", "-n", "run")
	cmd.Dir = testenv.RepoRoot(t)
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "DATABASE_URL") || strings.Contains(string(out), "SyncStorage") {
		t.Errorf("make run sets settings on the command line:\n%s", out)
	}
	// Other Azurite ports: the storage settings must follow them, or
	// UseDevelopmentStorage=true would point at the default ports.
	cmd = exec.Command("make", "-n", "run", "AZURITE_PORTS=20000,20001,20002", "PORT=8080")
	cmd.Dir = testenv.RepoRoot(t)
	out, _ = cmd.CombinedOutput()
	for _, want := range []string{"QueueEndpoint=http://127.0.0.1:20001/devstoreaccount1", "TableEndpoint=http://127.0.0.1:20002/devstoreaccount1", "-port 8080"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("make run AZURITE_PORTS=20000,20001,20002 PORT=8080 lacks %q:\n%s", want, out)
		}
	}
	if v := makeVar(t, "DEV_AZURITE_PORTS", "AZURITE_PORTS=20000,20001,20002"); v != "20000,20001,20002" {
		t.Errorf("dev.sh gets Azurite ports %q", v)
	}
}

// make help lists the targets newcomers need.
func TestMakeHelp(t *testing.T) {
	cmd := exec.Command("make", "-s", "help")
	cmd.Dir = testenv.RepoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make help: %v\n%s", err, out)
	}
	for _, target := range []string{"run", "test", "browser-test", "stop", "migrate", "seed", "PORT", "AZURITE_PORTS"} {
		if !strings.Contains(string(out), target) {
			t.Errorf("make help lacks %q:\n%s", target, out)
		}
	}
}
