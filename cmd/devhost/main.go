// Command devhost runs an Azure Functions custom-handler app locally, as
// `func start` does: devhost [flags] [APPDIR].
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"dualsync/devhost"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr))
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devhost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 0, "HTTP port (default: Host.LocalHttpPort in local.settings.json, else 7071)")
	listen := fs.String("listen", "", "exact listen address, e.g. 0.0.0.0:7071 (overrides -port)")
	startTimeout := fs.Duration("start-timeout", 30*time.Second, "how long the handler may take to answer GET /")
	keysFile := fs.String("keys", "", `enforce authLevel with the keys in FILE (the host's secrets file shape, e.g. {"masterKey":"M","functionKeys":{"default":"H"}}, or a directory of host.json + <function>.json); default: no keys enforced, as with Core Tools`)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: devhost [flags] [APPDIR]\n\nRuns the Azure Functions custom-handler app in APPDIR (default: the current directory)\nlike `func start`: host.json, local.settings.json and one folder per function.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 1 {
		fs.Usage()
		return 2
	}
	dir := "."
	if fs.NArg() == 1 {
		dir = fs.Arg(0)
	}
	var keys *devhost.Keys
	if *keysFile != "" {
		k, err := devhost.LoadKeys(*keysFile)
		if err != nil {
			fmt.Fprintf(stderr, "devhost: -keys: %v\n", err)
			return 1
		}
		keys = k
	}
	h, err := devhost.Load(dir, devhost.Options{
		Port: *port, ListenAddr: *listen, Environ: environ,
		Stdout: stdout, Stderr: stderr, StartTimeout: *startTimeout, Keys: keys,
	})
	if err != nil {
		fmt.Fprintf(stderr, "devhost: %v\n", err)
		return 1
	}
	if err := h.Run(ctx); err != nil {
		fmt.Fprintf(stderr, "devhost: %v\n", err)
		return 1
	}
	return 0
}
