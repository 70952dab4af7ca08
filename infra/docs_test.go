package infra

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The repository's docs and code must stand on their own: they cite public documentation, never
// a file outside the repository (such as the design notes the project was started from).
func TestDocsCiteOnlyPublicSources(t *testing.T) {
	// Built from parts so that this file does not match itself.
	outside := regexp.MustCompile(`functions` + `-contract|/work/` + `shared|\bcontract ` + `§`)
	root := ".."
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "node_modules", "dist", ".azure":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".go", ".md", ".bicep", ".bicepparam", ".sh", ".yaml", ".yml", ".json":
		default:
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for i, line := range strings.Split(string(b), "\n") {
			if m := outside.FindString(line); m != "" {
				t.Errorf("%s:%d cites %q, which is not in this repository; cite the public documentation (learn.microsoft.com) instead", path, i+1, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
