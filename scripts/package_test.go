package scripts

import (
	"archive/zip"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"dualsync/internal/testenv"
)

// The package's zip writer (the Go program inside scripts/package.sh) sets the handler's
// execute bits by name, whatever the file system reports: a package built on Windows, where Go
// reports no execute bits and chmod does nothing, must still start on Linux. The stage here
// has the handler without execute bits (as on Windows) and another file with them.
func TestPackageZipModesByName(t *testing.T) {
	root := testenv.RepoRoot(t)
	script, err := os.ReadFile(filepath.Join(root, "scripts", "package.sh"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)cat > "\$tool/zipdir.go" <<'GO'\n(.*?)\nGO\n`).FindSubmatch(script)
	if m == nil {
		t.Fatal("scripts/package.sh: the zipdir program (heredoc GO) not found")
	}
	// The script names host.json's executable when it runs the writer.
	var host struct {
		CustomHandler struct {
			Description struct {
				DefaultExecutablePath string `json:"defaultExecutablePath"`
			} `json:"description"`
		} `json:"customHandler"`
	}
	b, err := os.ReadFile(filepath.Join(root, "host.json"))
	if err != nil || json.Unmarshal(b, &host) != nil {
		t.Fatalf("host.json: %v", err)
	}
	exe := host.CustomHandler.Description.DefaultExecutablePath
	if !regexp.MustCompile(`go run zipdir\.go "\$stage" "\$out" ` + regexp.QuoteMeta(exe) + `\)`).Match(script) {
		t.Errorf("scripts/package.sh does not run zipdir with host.json's executable %q", exe)
	}

	dir := t.TempDir()
	tool, stage, out := filepath.Join(dir, "tool"), filepath.Join(dir, "stage"), filepath.Join(dir, "p.zip")
	files := map[string]fs.FileMode{
		exe:                0o644, // as Go reports a file on Windows
		"host.json":        0o755, // an execute bit that must not leak into the package
		"F/function.json":  0o644,
		"F/handler":        0o755, // not the executable: the name counts at the root only
		"G/nested/file.md": 0o600,
	}
	for name, mode := range files {
		p := filepath.Join(stage, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(name), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(tool, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tool, "zipdir.go"), m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "zipdir.go", stage, out, exe)
	cmd.Dir = tool
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("zipdir: %v\n%s", err, b)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	got := map[string]bool{}
	for _, f := range zr.File {
		got[f.Name] = true
		want := uint32(0o100644)
		if f.Name == exe {
			want = 0o100755
		}
		// The mode lives in the upper half of the external attributes and counts only when the
		// entry says it was made on Unix (creator OS 3).
		if creator := f.CreatorVersion >> 8; creator != 3 {
			t.Errorf("%s: creator OS %d, want 3 (Unix)", f.Name, creator)
		}
		if mode := f.ExternalAttrs >> 16; mode != want {
			t.Errorf("%s: unix mode %o, want %o", f.Name, mode, want)
		}
	}
	for name := range files {
		if !got[name] {
			t.Errorf("%s missing from the zip (entries %v)", name, got)
		}
	}
	if strings.Contains(string(m[1]), "0o111") {
		t.Error("zipdir still reads execute bits from the file system")
	}
}
