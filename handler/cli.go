package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
)

const usage = `usage: handler [serve]                       serve the API and the functions (the Functions host starts it so)
       handler migrate [-settings FILE]     apply the migrations to both databases
       handler seed [-settings FILE]        migrate, then insert the sample data where absent
       handler --help                       this text

migrate and seed read PRIMARY_DATABASE_URL and FALLBACK_DATABASE_URL (and
DB_CONNECT_TIMEOUT, ...) from the environment, and otherwise from the Values
of local.settings.json in the current directory (-settings FILE: another
file), as devhost and Core Tools do: an environment variable wins, and each
one that does is named. serve reads only the environment, which the host sets.
All settings: docs/architecture.md.
`

// command parses the command line without touching any database, so that
// help and mistakes answer at once.
func command(args []string, getenv func(string) string, stdout, stderr io.Writer) (cmd string, env func(string) string, err error) {
	cmd = "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return "", nil, nil
	case "serve":
		if len(args) > 0 {
			return "", nil, fmt.Errorf("serve takes no arguments (got %q)\n\n%s", args, usage)
		}
		return cmd, getenv, nil
	case "migrate", "seed":
		fl := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fl.SetOutput(io.Discard)
		file := fl.String("settings", "", "local.settings.json to read (default: the one in the current directory, if any)")
		if err := fl.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, usage)
				return "", nil, nil
			}
			return "", nil, fmt.Errorf("%s: %v\n\n%s", cmd, err, usage)
		}
		if fl.NArg() > 0 {
			return "", nil, fmt.Errorf("%s takes no arguments but -settings (got %q)\n\n%s", cmd, fl.Args(), usage)
		}
		env, err := withLocalSettings(getenv, *file, stderr)
		return cmd, env, err
	default:
		return "", nil, fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
	}
}

// withLocalSettings adds the Values of a local.settings.json under the
// environment: a variable set in the environment wins, and is named, as
// Core Tools names it. file "" means ./local.settings.json if it exists.
func withLocalSettings(getenv func(string) string, file string, stderr io.Writer) (func(string) string, error) {
	path := file
	if path == "" {
		path = "local.settings.json"
	}
	b, err := os.ReadFile(path)
	switch {
	case file == "" && errors.Is(err, fs.ErrNotExist):
		return getenv, nil
	case err != nil:
		return nil, fmt.Errorf("-settings: %w", err)
	}
	var ls struct {
		Values map[string]string `json:"Values"`
	}
	if err := json.Unmarshal(b, &ls); err != nil {
		return nil, fmt.Errorf("%s: %w (Values must be an object of strings)", path, err)
	}
	names := make([]string, 0, len(ls.Values))
	for k := range ls.Values {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if getenv(k) != "" {
			fmt.Fprintf(stderr, "Skipping '%s' from %s as it's already defined in current environment variables.\n", k, path)
		}
	}
	return func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return ls.Values[name]
	}, nil
}
