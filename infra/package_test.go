package infra

import (
	"archive/zip"
	"bytes"
	"debug/elf"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// packageRoot is the repository whose scripts/package.sh the test runs. A variable so that,
// while ./handler does not build yet, the test can be pointed at a scratch copy by hand.
var packageRoot = ".."

// TestPackage builds the deploy package with scripts/package.sh and checks that it is laid out
// as the Functions host expects: host.json, the handler and every function folder at the root,
// the handler a static linux/amd64 ELF with its execute bit, and no local settings.
func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the handler binary; runs without -short")
	}
	out := filepath.Join(t.TempDir(), "dualsync.zip")
	cmd := exec.Command("bash", filepath.Join(packageRoot, "scripts", "package.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, b)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()

	files := map[string]*zip.File{}
	for _, f := range zr.File {
		if strings.HasSuffix(f.Name, "/") {
			continue
		}
		files[f.Name] = f
	}

	// Exactly these files, with the same bytes as in the repository.
	want := map[string]string{"host.json": filepath.Join(packageRoot, "host.json")}
	fns, err := filepath.Glob(filepath.Join(packageRoot, "functions", "*", "function.json"))
	if err != nil || len(fns) == 0 {
		t.Fatalf("no functions/*/function.json (%v)", err)
	}
	for _, f := range fns {
		want[filepath.Base(filepath.Dir(f))+"/function.json"] = f
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == packageBinary {
			continue
		}
		src, ok := want[name]
		if !ok {
			t.Errorf("unexpected file in the package: %s", name)
			continue
		}
		if got, want := read(t, files[name]), readFile(t, src); !bytes.Equal(got, want) {
			t.Errorf("%s in the package differs from %s", name, src)
		}
		if files[name].Mode()&0o111 != 0 {
			t.Errorf("%s should not be executable (mode %v)", name, files[name].Mode())
		}
	}
	for name := range want {
		if _, ok := files[name]; !ok {
			t.Errorf("%s missing from the package root", name)
		}
	}
	if _, ok := files["local.settings.json"]; ok {
		t.Error("local.settings.json must not be packaged")
	}

	bin, ok := files[packageBinary]
	if !ok {
		t.Fatalf("%s missing from the package root; names: %v", packageBinary, names)
	}
	// The execute bit lives in the upper half of the external attributes, and only counts
	// when the entry says it was made on Unix (creator OS 3).
	if creator := bin.CreatorVersion >> 8; creator != 3 {
		t.Errorf("%s: creator OS %d, want 3 (Unix) so that its mode is honoured", packageBinary, creator)
	}
	if mode := bin.ExternalAttrs >> 16; mode&0o111 != 0o111 || mode&0o170000 != 0o100000 {
		t.Errorf("%s: unix mode %o, want a regular file with execute bits (0755)", packageBinary, mode)
	}
	f, err := elf.NewFile(bytes.NewReader(read(t, bin)))
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", packageBinary, err)
	}
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		t.Errorf("%s: %v %v, want ELFCLASS64 EM_X86_64", packageBinary, f.Class, f.Machine)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a %v program header: not a static binary (CGO_ENABLED=0?)", packageBinary, p.Type)
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		t.Errorf("%s has a .dynamic section: not a static binary", packageBinary)
	}
}

func read(t *testing.T, f *zip.File) []byte {
	t.Helper()
	r, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return b
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
