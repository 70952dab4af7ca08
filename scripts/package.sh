#!/usr/bin/env bash
# Builds the deployable Functions package: dist/dualsync.zip (or the path given as $1).
#
# Layout at the zip root, as the Functions host expects it:
#   host.json
#   handler                 static linux/amd64 binary (mode 0755)
#   <Function>/function.json one folder per function, copied from functions/<Function>/
# local.settings.json is never packaged: it holds local development values only.
#
# The zip is written by a few lines of Go (the one tool every builder of this repo has),
# so the execute bit is stored explicitly and no zip/python is needed. The handler gets mode
# 0755 by name, not from the file system: on Windows (Git Bash) chmod does nothing and Go
# reports no execute bits, and a handler without them cannot start on Linux.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/dist/dualsync.zip}"
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

stage="$(mktemp -d)"
tool="$(mktemp -d)"
trap 'rm -rf "$stage" "$tool"' EXIT

cd "$root"
CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags='-s -w' -o "$stage/handler" ./handler
chmod 0755 "$stage/handler"
cp host.json "$stage/host.json"
for dir in functions/*/; do
	name="$(basename "$dir")"
	[ -f "$dir/function.json" ] || { echo "package: $dir has no function.json" >&2; exit 1; }
	mkdir -p "$stage/$name"
	# Copy the folder's files (function.json and anything else the function ships), never local settings.
	find "$dir" -maxdepth 1 -type f ! -name 'local.settings.json' -exec cp {} "$stage/$name/" \;
done

cat > "$tool/zipdir.go" <<'GO'
// zipdir writes every file under a directory into a zip, with paths relative to that directory,
// sorted, fixed timestamps, mode 0755 for the entries named as EXECUTABLE and 0644 for the rest,
// whatever the file system says (Windows has no execute bits).
package main

import (
	"archive/zip"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"time"
)

func main() {
	if len(os.Args) < 3 {
		log.Fatal("usage: zipdir SRC_DIR OUT_ZIP [EXECUTABLE...]")
	}
	src, dst := os.Args[1], os.Args[2]
	executable := map[string]bool{}
	for _, name := range os.Args[3:] {
		executable[name] = true
	}
	f, err := os.Create(dst)
	if err != nil {
		log.Fatal(err)
	}
	zw := zip.NewWriter(f)
	stamp := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		h := &zip.FileHeader{Name: filepath.ToSlash(rel), Method: zip.Deflate, Modified: stamp}
		mode := fs.FileMode(0o644)
		if executable[h.Name] {
			mode = 0o755
		}
		h.SetMode(mode) // also marks the entry as made on Unix, so the mode is honoured when extracted
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		r, err := os.Open(path)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(w, r)
		return err
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := f.Close(); err != nil {
		log.Fatal(err)
	}
}
GO

mkdir -p "$(dirname "$out")"
rm -f "$out"
# GOFLAGS cleared so a -mod setting meant for the repo does not apply to this single file.
(cd "$tool" && env -u GOOS -u GOARCH GOFLAGS= go run zipdir.go "$stage" "$out" handler)
echo "package: wrote $out"
