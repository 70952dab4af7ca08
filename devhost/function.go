package devhost

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Binding types devhost implements.
const (
	typeHTTPTrigger  = "httptrigger"
	typeHTTP         = "http"
	typeQueueTrigger = "queuetrigger"
	typeQueue        = "queue"
	typeTimerTrigger = "timertrigger"
)

type function struct {
	Name     string
	File     string
	Trigger  *binding
	Outputs  []*binding
	Disabled bool
	Forward  bool // forwarded HTTP (enableForwardingHttpRequest and http in + http out only)

	// HTTP trigger
	route     *route
	methods   map[string]bool // nil = any method
	authLevel string          // lower-case; enforced only with Options.Keys

	// timer trigger
	timer *timerSpec
}

type binding struct {
	Type       string // lower-case
	Direction  string // "in" or "out"
	Name       string
	QueueName  string
	Connection string
	DataType   string
}

var queueNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)

// readFunction parses and validates one function.json.
func (a *app) readFunction(name, file string) (*function, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := decodeJSON(data, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	r := &reader{file: file, root: raw}
	fn := &function{Name: name, File: file}
	fn.Disabled = r.boolean("disabled", false)
	if d, ok := a.settings.get("AzureWebJobs." + name + ".Disabled"); ok {
		// LOCAL-DOC: "AzureWebJobs.<FunctionName>.Disabled": "true" disables a function.
		fn.Disabled = strings.EqualFold(strings.TrimSpace(d), "true") || strings.TrimSpace(d) == "1"
	}
	v, ok := r.lookup("bindings")
	if !ok {
		return nil, fmt.Errorf("%s: bindings: missing", file)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: bindings: want an array, got %s", file, jsonKind(v))
	}
	names := map[string]bool{}
	var trigger map[string]any
	triggerField := ""
	for i, x := range list {
		field := fmt.Sprintf("bindings[%d]", i)
		m, ok := x.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s: %s: want an object, got %s", file, field, jsonKind(x))
		}
		br := &reader{file: file, root: m}
		b := &binding{
			Type:      strings.ToLower(br.str("type", "")),
			Direction: strings.ToLower(br.str("direction", "")),
			Name:      br.str("name", ""),
		}
		if err := br.err(); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, field, stripFile(err, file))
		}
		if b.Type == "" {
			return nil, fmt.Errorf("%s: %s.type: required", file, field)
		}
		if b.Name == "" {
			return nil, fmt.Errorf("%s: %s.name: required", file, field)
		}
		if names[strings.ToLower(b.Name)] {
			return nil, fmt.Errorf("%s: %s.name: %q is used by two bindings", file, field, b.Name)
		}
		names[strings.ToLower(b.Name)] = true
		isTrigger := strings.HasSuffix(b.Type, "trigger")
		if b.Direction == "" && isTrigger {
			b.Direction = "in"
		}
		switch {
		case isTrigger && b.Direction != "in":
			return nil, fmt.Errorf("%s: %s.direction: a trigger must have direction \"in\", got %q", file, field, b.Direction)
		case b.Direction != "in" && b.Direction != "out":
			return nil, fmt.Errorf("%s: %s.direction: want \"in\" or \"out\", got %q", file, field, b.Direction)
		}
		if b.Name == "$return" && b.Direction != "out" {
			return nil, fmt.Errorf("%s: %s.name: \"$return\" is only valid for an output binding", file, field)
		}
		switch {
		case b.Type == typeHTTPTrigger || b.Type == typeQueueTrigger || b.Type == typeTimerTrigger:
			if trigger != nil {
				return nil, fmt.Errorf("%s: %s: a function has exactly one trigger; %s is one already", file, field, triggerField)
			}
			trigger, triggerField = m, field
			fn.Trigger = b
		case (b.Type == typeHTTP || b.Type == typeQueue) && b.Direction == "out":
			fn.Outputs = append(fn.Outputs, b)
		default:
			return nil, fmt.Errorf("%s: %s.type: binding %q (direction %q) is not supported by devhost; supported: httpTrigger, http (out), queueTrigger, queue (out), timerTrigger",
				file, field, br.str("type", ""), b.Direction)
		}
		if b.Type == typeQueue || b.Type == typeQueueTrigger {
			if err := a.queueBinding(b, br, file, field); err != nil {
				return nil, err
			}
		}
	}
	if fn.Trigger == nil {
		return nil, fmt.Errorf("%s: bindings: no trigger binding (httpTrigger, queueTrigger or timerTrigger)", file)
	}
	tr := &reader{file: file, root: trigger}
	switch fn.Trigger.Type {
	case typeHTTPTrigger:
		if err := a.httpTrigger(fn, tr, triggerField); err != nil {
			return nil, err
		}
	case typeTimerTrigger:
		sched, err := a.expand(tr.str("schedule", ""))
		if err != nil {
			return nil, fmt.Errorf("%s: %s.schedule: %w", file, triggerField, err)
		}
		if sched == "" {
			return nil, fmt.Errorf("%s: %s.schedule: required (NCRONTAB such as \"0 */5 * * * *\")", file, triggerField)
		}
		spec, err := parseTimer(sched, a.settings)
		if err != nil {
			return nil, fmt.Errorf("%s: %s.schedule: %w", file, triggerField, err)
		}
		spec.runOnStartup = tr.boolean("runOnStartup", false)
		if v, ok := tr.lookup("useMonitor"); ok && v != nil {
			b := tr.boolean("useMonitor", true)
			spec.useMonitor = b
		}
		if err := tr.err(); err != nil {
			return nil, err
		}
		fn.timer = spec
	}
	for _, o := range fn.Outputs {
		if o.Type == typeHTTP && fn.Trigger.Type != typeHTTPTrigger {
			return nil, fmt.Errorf("%s: binding %q: an http output needs an httpTrigger", file, o.Name)
		}
	}
	// HOST-FM IsHttpInAndOutFunction: forwarding applies only to exactly one
	// httpTrigger input and exactly one http output, nothing else.
	fn.Forward = a.forward && fn.Trigger.Type == typeHTTPTrigger && len(list) == 2 &&
		len(fn.Outputs) == 1 && fn.Outputs[0].Type == typeHTTP
	return fn, nil
}

func stripFile(err error, file string) error {
	return fmt.Errorf("%s", strings.TrimPrefix(err.Error(), file+": "))
}

func (a *app) queueBinding(b *binding, br *reader, file, field string) error {
	q, err := a.expand(br.str("queueName", ""))
	if err != nil {
		return fmt.Errorf("%s: %s.queueName: %w", file, field, err)
	}
	if q == "" {
		return fmt.Errorf("%s: %s.queueName: required", file, field)
	}
	// Queue names are lower-case in Azure Storage; the host lower-cases them too.
	q = strings.ToLower(q)
	if !queueNameRE.MatchString(q) {
		return fmt.Errorf("%s: %s.queueName: %q is not a valid queue name (3-63 lower-case letters, digits and single hyphens)", file, field, q)
	}
	b.QueueName = q
	if b.Connection, err = a.expand(br.str("connection", "")); err != nil {
		return fmt.Errorf("%s: %s.connection: %w", file, field, err)
	}
	b.DataType = strings.ToLower(br.str("dataType", ""))
	if err := br.err(); err != nil {
		return err
	}
	if _, err := a.connectionString(b.Connection); err != nil {
		return fmt.Errorf("%s: %s.connection: %w", file, field, err)
	}
	return nil
}

func (a *app) httpTrigger(fn *function, tr *reader, field string) error {
	file := fn.File
	tmpl := tr.str("route", "")
	if tmpl == "" {
		tmpl = fn.Name // default route is the function name
	}
	// The host's default level is function. It is enforced only when devhost
	// has keys (Options.Keys), as Core Tools does not enforce it locally.
	switch lvl := strings.ToLower(tr.str("authLevel", levelFunction)); lvl {
	case levelAnonymous, levelFunction, levelAdmin, levelSystem, levelUser:
		fn.authLevel = lvl
	default:
		return fmt.Errorf("%s: %s.authLevel: want anonymous, function or admin, got %q", file, field, lvl)
	}
	methods := tr.strs("methods")
	if err := tr.err(); err != nil {
		return err
	}
	if len(methods) > 0 {
		fn.methods = map[string]bool{}
		for _, m := range methods {
			m = strings.ToUpper(strings.TrimSpace(m))
			switch m {
			case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete,
				http.MethodHead, http.MethodOptions, http.MethodTrace:
			default:
				return fmt.Errorf("%s: %s.methods: unknown HTTP method %q", file, field, m)
			}
			fn.methods[m] = true
		}
	}
	tmpl = strings.Trim(tmpl, "/")
	if strings.HasPrefix(strings.ToLower(tmpl+"/"), "admin/") && a.prefix == "" {
		return fmt.Errorf("%s: %s.route: routes starting with \"admin\" are reserved by the host", file, field)
	}
	full := tmpl
	if a.prefix != "" {
		full = a.prefix + "/" + tmpl
	}
	rt, err := parseRoute(full)
	if err != nil {
		return fmt.Errorf("%s: %s.route: %w", file, field, err)
	}
	fn.route = rt
	return nil
}

// methodList renders the allowed methods for the start-up listing.
func (fn *function) methodList() string {
	if fn.methods == nil {
		return "GET,POST,PUT,PATCH,DELETE,HEAD,OPTIONS"
	}
	var ms []string
	for m := range fn.methods {
		ms = append(ms, m)
	}
	sort.Strings(ms)
	return strings.Join(ms, ",")
}
