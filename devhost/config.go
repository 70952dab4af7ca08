package devhost

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// app is a loaded, validated function app.
type app struct {
	root      string
	hostFile  string
	settings  settings // effective settings: process environment over local.settings.json Values
	env       []string // environment of the handler process (without the FUNCTIONS_CUSTOMHANDLER_* variables)
	exe       string
	args      []string
	workDir   string
	forward   bool
	timeout   time.Duration // 0 = none
	prefix    string        // route prefix without slashes ("" = none)
	queues    queueOptions
	localPort int // Host.LocalHttpPort, 0 if unset
	functions []*function
	broken    []FunctionError // functions in error, in folder order
	skipped   []string        // Values the process environment overrides, sorted
	logLevels map[string]int  // host.json logging.logLevel, category (lower case) -> level
}

// Log levels as .NET's LogLevel numbers them.
const (
	levelInformation = 2
	levelError       = 4
)

var logLevelNames = map[string]int{"trace": 0, "debug": 1, "information": 2, "warning": 3, "error": 4, "critical": 5, "none": 6}

// functionLogs reports whether a function's log lines at level are
// written: the most specific of Function.<Name>, Function and default.
func (a *app) functionLogs(name string, level int) bool {
	for _, cat := range []string{"function." + strings.ToLower(name), "function", "default"} {
		if min, ok := a.logLevels[cat]; ok {
			return level >= min
		}
	}
	return level >= levelInformation
}

type queueOptions struct {
	MaxPollingInterval time.Duration
	VisibilityTimeout  time.Duration
	BatchSize          int
	NewBatchThreshold  int
	MaxDequeueCount    int
	MessageEncoding    string // "base64" or "none"
}

// settings looks names up case-insensitively, as .NET configuration (and so
// the host's %Setting% resolver and connection lookup) does.
type settings map[string]string

func (s settings) get(name string) (string, bool) {
	v, ok := s[strings.ToLower(name)]
	return v, ok
}

// hostOverridePrefix marks app settings that override host.json (https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values).
const hostOverridePrefix = "azurefunctionsjobhost__"

// loadApp reads host.json, local.settings.json and every <Function>/function.json
// under root. environ is the process environment ("K=V" entries).
func loadApp(root string, environ []string) (*app, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	a := &app{root: root, hostFile: filepath.Join(root, "host.json")}

	values, localPort, err := readLocalSettings(filepath.Join(root, "local.settings.json"))
	if err != nil {
		return nil, err
	}
	a.localPort = localPort

	// Core Tools copies Values into its environment only when the variable is
	// not set already ("Skipping 'X' from local settings as it's already defined
	// in current environment variables", Azure/Azure-Functions#1218), so real
	// environment variables win over local.settings.json, as app settings do.
	envNames := map[string]bool{}
	for _, kv := range environ {
		if k, _, ok := strings.Cut(kv, "="); ok {
			envNames[k] = true
		}
	}
	a.env = append([]string(nil), environ...)
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envNames[k] {
			a.env = append(a.env, k+"="+values[k])
		} else {
			a.skipped = append(a.skipped, k)
		}
	}
	a.settings = settings{}
	for _, kv := range a.env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			a.settings[strings.ToLower(k)] = v
		}
	}

	if err := a.readHost(); err != nil {
		return nil, err
	}
	if err := a.readFunctions(); err != nil {
		return nil, err
	}
	return a, nil
}

func readLocalSettings(path string) (map[string]string, int, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, 0, nil // optional, as for func start
	}
	if err != nil {
		return nil, 0, err
	}
	var raw map[string]any
	if err := decodeJSON(data, &raw); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	r := &reader{file: path, root: raw}
	if b, ok := r.lookup("IsEncrypted"); ok && b == true {
		return nil, 0, fmt.Errorf("%s: IsEncrypted: encrypted settings are not supported by devhost; run `func settings decrypt` or write plain values", path)
	}
	values := map[string]string{}
	if v, ok := r.lookup("Values"); ok && v != nil {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, 0, fmt.Errorf("%s: Values: want an object of strings", path)
		}
		for k, x := range m {
			switch x := x.(type) {
			case string:
				values[k] = x
			case nil:
				values[k] = ""
			default:
				// LOCAL-DOC: Values must be strings; Core Tools rejects objects and arrays.
				return nil, 0, fmt.Errorf("%s: Values.%s: want a string, got %s", path, k, jsonKind(x))
			}
		}
	}
	port := r.integer("Host.LocalHttpPort", 0)
	if port < 0 || port > 65535 {
		r.errf("Host.LocalHttpPort", "want a TCP port, got %d", port)
	}
	if err := r.err(); err != nil {
		return nil, 0, err
	}
	return values, port, nil
}

func (a *app) readHost() error {
	data, err := os.ReadFile(a.hostFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: missing: an app directory needs host.json (is %s the function app root?)", a.hostFile, a.root)
		}
		return err
	}
	var raw map[string]any
	if err := decodeJSON(data, &raw); err != nil {
		return fmt.Errorf("%s: %w", a.hostFile, err)
	}
	// AzureFunctionsJobHost__a__b settings override host.json (https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values).
	// Keys are applied in sorted order so the result does not depend on map order.
	var names []string
	for k := range a.settings {
		if strings.HasPrefix(k, hostOverridePrefix) && len(k) > len(hostOverridePrefix) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		setPath(raw, strings.Split(k[len(hostOverridePrefix):], "__"), a.settings[k])
	}
	r := &reader{file: a.hostFile, root: raw}

	if v := r.str("version", ""); v != "2.0" {
		r.errf("version", `want "2.0", got %q`, v)
	}
	section := "customHandler"
	if _, ok := r.lookup("customHandler"); !ok {
		if _, ok := r.lookup("httpWorker"); ok {
			section = "httpWorker" // legacy name, still read by the host
		} else {
			return fmt.Errorf("%s: customHandler: missing; devhost runs custom handler apps only", a.hostFile)
		}
	}
	desc := section + ".description"
	exe := r.str(desc+".defaultExecutablePath", "")
	if exe == "" && r.err() == nil {
		r.errf(desc+".defaultExecutablePath", "required: the command that starts the handler")
	}
	args := r.strs(desc + ".arguments")
	workerPath := r.str(desc+".defaultWorkerPath", "")
	workerArgs := r.strs(desc + ".workerArguments")
	a.workDir = r.str(desc+".workingDirectory", "")
	a.forward = r.boolean(section+".enableForwardingHttpRequest", false)
	if r.boolean(section+".enableProxyingHttpRequest", false) {
		r.errf(section+".enableProxyingHttpRequest", "proxying mode is not supported by devhost; use enableForwardingHttpRequest")
	}

	// Core Tools is not a Consumption plan, so the host's non-dynamic default
	// of 30 minutes applies when functionTimeout is absent; "-1" means none.
	a.timeout = 30 * time.Minute
	if s := r.str("functionTimeout", ""); s == "-1" {
		a.timeout = 0
	} else if s != "" {
		if d, err := parseTimeSpan(s); err != nil || d <= 0 {
			r.errf("functionTimeout", `want a positive time span like "00:05:00" or "-1", got %q`, s)
		} else {
			a.timeout = d
		}
	}

	// logging.logLevel: the host writes a function's Executing/Executed
	// lines in category Function.<Name> at Information (a failure at
	// Error); "Function.<Name>": "Warning" silences a chatty timer's.
	a.logLevels = map[string]int{}
	if v, ok := r.lookup("logging.logLevel"); ok {
		m, isMap := v.(map[string]any)
		if !isMap {
			r.errf("logging.logLevel", "want an object of category: level, got %s", jsonKind(v))
		}
		for k, x := range m {
			s, _ := x.(string)
			lvl, known := logLevelNames[strings.ToLower(s)]
			if !known {
				r.errf("logging.logLevel."+k, "want Trace, Debug, Information, Warning, Error, Critical or None, got %v", x)
				continue
			}
			a.logLevels[strings.ToLower(k)] = lvl
		}
	}

	a.prefix = "api"
	if v, ok := r.lookup("extensions.http.routePrefix"); ok {
		s, isStr := v.(string)
		if !isStr {
			r.errf("extensions.http.routePrefix", "want a string, got %s", jsonKind(v))
		}
		a.prefix = strings.Trim(s, "/")
	}

	q := queueOptions{
		// Locally the storage extension caps polling at 2 s (QTRIG-DOC); in Azure the default is 1 min.
		MaxPollingInterval: r.duration("extensions.queues.maxPollingInterval", 2*time.Second),
		VisibilityTimeout:  r.duration("extensions.queues.visibilityTimeout", 0),
		BatchSize:          r.integer("extensions.queues.batchSize", 16),
		MaxDequeueCount:    r.integer("extensions.queues.maxDequeueCount", 5),
		MessageEncoding:    strings.ToLower(r.str("extensions.queues.messageEncoding", "base64")),
	}
	if q.BatchSize < 1 || q.BatchSize > 32 {
		r.errf("extensions.queues.batchSize", "want 1..32, got %d", q.BatchSize)
	}
	// QOPT: newBatchThreshold defaults to batchSize/2 times the processor count
	// off Consumption plans, which a development machine is.
	q.NewBatchThreshold = r.integer("extensions.queues.newBatchThreshold", q.BatchSize/2*runtime.NumCPU())
	if q.NewBatchThreshold < 0 {
		r.errf("extensions.queues.newBatchThreshold", "want >= 0, got %d", q.NewBatchThreshold)
	}
	if q.MaxDequeueCount < 1 {
		r.errf("extensions.queues.maxDequeueCount", "want >= 1, got %d", q.MaxDequeueCount)
	}
	if q.MaxPollingInterval < 100*time.Millisecond {
		r.errf("extensions.queues.maxPollingInterval", "want at least 00:00:00.100, got %v", q.MaxPollingInterval)
	}
	if q.VisibilityTimeout < 0 {
		r.errf("extensions.queues.visibilityTimeout", "want >= 0, got %v", q.VisibilityTimeout)
	}
	if q.MessageEncoding != "base64" && q.MessageEncoding != "none" {
		r.errf("extensions.queues.messageEncoding", `want "base64" or "none", got %q`, q.MessageEncoding)
	}
	a.queues = q
	if err := r.err(); err != nil {
		return err
	}

	// CH-DOC: arguments support %AppSetting% expansion.
	field := desc + ".arguments"
	for i := range args {
		if args[i], err = a.expand(args[i]); err != nil {
			return fmt.Errorf("%s: %s[%d]: %w", a.hostFile, field, i, err)
		}
	}
	for i := range workerArgs {
		if workerArgs[i], err = a.expand(workerArgs[i]); err != nil {
			return fmt.Errorf("%s: %s.workerArguments[%d]: %w", a.hostFile, desc, i, err)
		}
	}
	// HttpWorkerDescription: a relative path that exists under the app root is
	// made absolute; anything else is a command looked up on PATH.
	a.exe = exe
	if !filepath.IsAbs(exe) {
		if p := filepath.Join(a.root, exe); fileExists(p) {
			a.exe = p
		}
	}
	if workerPath != "" && !filepath.IsAbs(workerPath) {
		if p := filepath.Join(a.root, workerPath); fileExists(p) {
			workerPath = p
		}
	}
	a.args = args
	if workerPath != "" {
		a.args = append(a.args, workerPath)
	}
	a.args = append(a.args, workerArgs...)
	switch {
	case a.workDir == "":
		a.workDir = a.root
	case !filepath.IsAbs(a.workDir):
		a.workDir = filepath.Join(a.root, a.workDir)
	}
	return nil
}

// FunctionError is a function devhost could not load: a malformed
// function.json or a binding devhost does not implement. As the Azure host
// does with a function in error, devhost keeps it out of service, reports
// the reason at start-up and runs the other functions.
type FunctionError struct {
	Name string // the function's folder name
	File string // its function.json
	Err  error  // names the file and the field
}

// FunctionErrors lists the functions that are in error and so do not run,
// in folder order; Run also prints them after the function listing.
func (h *Host) FunctionErrors() []FunctionError {
	return append([]FunctionError(nil), h.app.broken...)
}

func (a *app) readFunctions() error {
	entries, err := os.ReadDir(a.root)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		file := filepath.Join(a.root, e.Name(), "function.json")
		if !fileExists(file) {
			continue // the host ignores folders without function.json
		}
		// Function names are case-insensitive in the host.
		if prev, dup := names[strings.ToLower(e.Name())]; dup {
			a.broken = append(a.broken, FunctionError{Name: e.Name(), File: file,
				Err: fmt.Errorf("%s: function name %q differs from %q only in case", file, e.Name(), prev)})
			continue
		}
		names[strings.ToLower(e.Name())] = e.Name()
		fn, err := a.readFunction(e.Name(), file)
		if err != nil {
			a.broken = append(a.broken, FunctionError{Name: e.Name(), File: file, Err: err})
			continue
		}
		a.functions = append(a.functions, fn)
	}
	switch {
	case len(a.functions) > 0:
		// A function disabled by a setting counts: that is a choice, not
		// an error, and flipping the setting makes it run.
		return nil
	case len(a.broken) == 0:
		return fmt.Errorf("%s: no functions: no folder beside host.json holds a function.json", a.root)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: no function can run: all %d are in error:", a.root, len(a.broken))
	for _, fe := range a.broken {
		fmt.Fprintf(&b, "\n  %s: %v", fe.Name, fe.Err)
	}
	return errors.New(b.String())
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// expand replaces %Name% with the setting Name, as the host's name resolver
// does for binding properties. "%%" is left alone.
func (a *app) expand(s string) (string, error) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i+1:], '%')
		if j < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		name := s[i+1 : i+1+j]
		b.WriteString(s[:i])
		if name == "" {
			b.WriteString("%%")
		} else {
			v, ok := a.settings.get(name)
			if !ok {
				return "", fmt.Errorf("'%%%s%%' does not resolve to a value: no app setting (environment variable or local.settings.json Values entry) named %q", name, name)
			}
			b.WriteString(v)
		}
		s = s[i+j+2:]
	}
}

// decodeJSON decodes data and turns syntax errors into "line L, column C".
func decodeJSON(data []byte, v any) error {
	err := json.Unmarshal(data, v)
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(data, se.Offset)
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("want a JSON object, got %s", te.Value)
	}
	return err
}

func lineCol(data []byte, off int64) (int, int) {
	line, col := 1, 1
	for i := int64(0); i < off && i < int64(len(data)); i++ {
		if data[i] == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// setPath sets a value in a decoded JSON tree, matching object keys
// case-insensitively (as .NET configuration does), addressing array elements
// by index (arguments__0) and creating objects as needed.
func setPath(node any, path []string, value string) any {
	if len(path) == 0 {
		return value
	}
	switch n := node.(type) {
	case []any:
		idx, err := strconv.Atoi(path[0])
		if err != nil || idx < 0 || idx > 1024 {
			return n
		}
		for len(n) <= idx {
			n = append(n, nil)
		}
		n[idx] = setPath(n[idx], path[1:], value)
		return n
	case map[string]any:
		key := path[0]
		for k := range n {
			if strings.EqualFold(k, key) {
				key = k
				break
			}
		}
		n[key] = setPath(n[key], path[1:], value)
		return n
	default:
		return setPath(map[string]any{}, path, value)
	}
}

// reader reads typed values from a decoded JSON tree by dotted path and
// collects errors that name the file and the field.
type reader struct {
	file string
	root map[string]any
	errs []error
}

func (r *reader) errf(field, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s: %s", r.file, field, fmt.Sprintf(format, args...)))
}

func (r *reader) err() error { return errors.Join(r.errs...) }

func (r *reader) lookup(path string) (any, bool) {
	var cur any = r.root
	for _, p := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		found := false
		for k, v := range m {
			if strings.EqualFold(k, p) {
				cur, found = v, true
				break
			}
		}
		if !found {
			return nil, false
		}
	}
	return cur, true
}

func (r *reader) str(path, def string) string {
	v, ok := r.lookup(path)
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		r.errf(path, "want a string, got %s", jsonKind(v))
		return def
	}
	return s
}

func (r *reader) strs(path string) []string {
	v, ok := r.lookup(path)
	if !ok || v == nil {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		r.errf(path, "want an array of strings, got %s", jsonKind(v))
		return nil
	}
	out := make([]string, 0, len(arr))
	for i, x := range arr {
		s, ok := x.(string)
		if !ok {
			r.errf(fmt.Sprintf("%s[%d]", path, i), "want a string, got %s", jsonKind(x))
			continue
		}
		out = append(out, s)
	}
	return out
}

// integer accepts a JSON number or, because overrides from app settings are
// strings, a numeric string.
func (r *reader) integer(path string, def int) int {
	v, ok := r.lookup(path)
	if !ok || v == nil {
		return def
	}
	switch x := v.(type) {
	case float64:
		if x == float64(int(x)) {
			return int(x)
		}
	case string:
		if n, err := strconv.Atoi(strings.TrimSpace(x)); err == nil {
			return n
		}
	}
	r.errf(path, "want an integer, got %v", v)
	return def
}

func (r *reader) boolean(path string, def bool) bool {
	v, ok := r.lookup(path)
	if !ok || v == nil {
		return def
	}
	switch x := v.(type) {
	case bool:
		return x
	case string:
		if b, err := strconv.ParseBool(strings.TrimSpace(x)); err == nil {
			return b
		}
	}
	r.errf(path, "want true or false, got %v", v)
	return def
}

func (r *reader) duration(path string, def time.Duration) time.Duration {
	v, ok := r.lookup(path)
	if !ok || v == nil {
		return def
	}
	s, ok := v.(string)
	if !ok {
		r.errf(path, `want a time span string like "00:00:30", got %s`, jsonKind(v))
		return def
	}
	d, err := parseTimeSpan(s)
	if err != nil {
		r.errf(path, `want a time span like "00:00:30", got %q`, s)
		return def
	}
	return d
}

// parseTimeSpan parses the .NET TimeSpan forms used in host.json:
// [-][d.]hh:mm[:ss[.fffffff]] and a bare day count.
func parseTimeSpan(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	bad := fmt.Errorf("invalid time span %q", s)
	var days int64
	if !strings.Contains(s, ":") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, bad
		}
		days = n
		s = "0:0:0"
	} else if d, rest, ok := strings.Cut(s, "."); ok && strings.Index(s, ".") < strings.Index(s, ":") {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil {
			return 0, bad
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, bad
	}
	var sec float64
	if len(parts) == 3 {
		whole, frac, _ := strings.Cut(parts[2], ".")
		si, err := strconv.Atoi(whole)
		if err != nil || si < 0 || si > 59 {
			return 0, bad
		}
		sec = float64(si)
		if frac != "" {
			f, err := strconv.ParseFloat("0."+frac, 64)
			if err != nil {
				return 0, bad
			}
			sec += f
		}
	}
	d := time.Duration(days)*24*time.Hour + time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(sec*float64(time.Second)+0.5)
	if neg {
		d = -d
	}
	return d, nil
}

// formatTimeSpan renders a duration as the host prints TimeSpans (hh:mm:ss[.fff]).
func formatTimeSpan(d time.Duration) string {
	h := int(d / time.Hour)
	m := int(d % time.Hour / time.Minute)
	s := d % time.Minute
	sec := int(s / time.Second)
	ms := int(s % time.Second / time.Millisecond)
	if ms != 0 {
		return fmt.Sprintf("%02d:%02d:%02d.%03d", h, m, sec, ms)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
}
