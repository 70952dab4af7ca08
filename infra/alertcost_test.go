package infra

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The number of alert rules, their severities and frequencies, and the monthly cost the docs
// state all come from alerts.bicep: these checks compute them from it and compare.

// Azure Monitor log alert rules, USD a month at list price (2025), by evaluation frequency:
// every 5 minutes, and every 15 minutes or less often (docs/deploy.md cites the pricing page).
const (
	costPer5Min  = 1.50
	costPer15Min = 0.50
)

type alertRule struct {
	name      string
	severity  string
	frequency string // ISO 8601, resolved from the defaults
}

// alertRules reads every scheduled query rule alerts.bicep creates: the eventRules entries (one
// rule each, through the loop resource) and the other scheduledQueryRules resources.
func alertRules(bicep string) ([]alertRule, []string) {
	c := &checker{}
	text := stripComments(bicep)
	defaults := map[string]string{}
	if i := strings.Index(text, "var defaults = {"); i >= 0 {
		for _, kv := range topKeys(balanced(text, i)) {
			defaults[kv.key] = strings.Trim(kv.value, "'")
		}
	} else {
		c.errorf("alerts.bicep: var defaults not found")
	}
	resolve := func(v string) string {
		if k, ok := strings.CutPrefix(v, "t."); ok {
			if d, ok := defaults[k]; ok {
				return d
			}
			c.errorf("alerts.bicep: %s has no default", v)
		}
		return strings.Trim(v, "'")
	}
	var rules []alertRule
	if i := strings.Index(text, "var eventRules = ["); i >= 0 {
		list := balanced(text, i+len("var eventRules = "))
		for j := 1; j < len(list); {
			k := strings.Index(list[j:], "{")
			if k < 0 {
				break
			}
			entry := balanced(list, j+k)
			j += k + len(entry)
			var r alertRule
			for _, kv := range topKeys(entry) {
				switch kv.key {
				case "name":
					r.name = strings.Trim(kv.value, "'")
				case "severity":
					r.severity = kv.value
				case "frequency":
					r.frequency = resolve(kv.value)
				}
			}
			rules = append(rules, r)
		}
	} else {
		c.errorf("alerts.bicep: var eventRules not found")
	}
	standalone := 0
	for _, res := range parseResources("alerts.bicep", text) {
		if res.typ != "Microsoft.Insights/scheduledQueryRules" || strings.HasPrefix(res.body, "[") {
			continue // the loop over eventRules is counted above
		}
		standalone++
		props := block(res.body, "properties")
		var r alertRule
		if m := regexp.MustCompile(`displayName:\s*'dualsync: ([^']+)'`).FindStringSubmatch(props); m != nil {
			r.name = m[1]
		}
		r.severity, _ = prop(props, "severity")
		f, _ := prop(props, "evaluationFrequency")
		r.frequency = resolve(f)
		rules = append(rules, r)
	}
	if m := regexp.MustCompile(`output alertRuleCount int = length\(eventRules\) \+ (\d+)`).FindStringSubmatch(text); m == nil || m[1] != fmt.Sprint(standalone) {
		c.errorf("alerts.bicep: output alertRuleCount must be length(eventRules) + %d (the other rules)", standalone)
	}
	for _, res := range parseResources("alerts.bicep", text) {
		if res.typ == "Microsoft.Insights/scheduledQueryRules" && !strings.Contains(block(res.body, "properties"), "skipQueryValidation: true") {
			c.errorf("alerts.bicep: %s lacks skipQueryValidation: true (its Application Insights may be seconds old on a first provisioning)", res.symbol)
		}
	}
	return rules, c.problems
}

// alertCostProblems compares the rules with the runbook's table and the cost the docs state.
func alertCostProblems(bicep, doc string) []string {
	rules, problems := alertRules(bicep)
	c := &checker{problems: problems}
	freqDoc := map[string]string{"PT5M": "5 min", "PT15M": "15 min", "PT1H": "1 h"}
	fast, slow := 0, 0
	for _, r := range rules {
		switch r.frequency {
		case "PT5M":
			fast++
		case "PT15M", "PT30M", "PT1H":
			slow++
		default:
			c.errorf("alerts.bicep: rule %s runs every %q; the cost model knows PT5M, PT15M, PT30M, PT1H", r.name, r.frequency)
		}
	}
	cost := float64(fast)*costPer5Min + float64(slow)*costPer15Min

	// The runbook's table: one row per rule, same severity and frequency.
	rows := map[string][]string{}
	var order []string
	lines := strings.Split(doc, "\n")
	for i, line := range lines {
		if !strings.HasPrefix(line, "| Alert | Event | Severity |") {
			continue
		}
		for _, row := range lines[i+2:] {
			if !strings.HasPrefix(row, "|") {
				break
			}
			cells := strings.Split(strings.Trim(row, "|"), "|")
			for k := range cells {
				cells[k] = strings.TrimSpace(cells[k])
			}
			name := strings.Trim(cells[0], "`")
			rows[name] = cells
			order = append(order, name)
		}
		break
	}
	if len(rows) == 0 {
		c.errorf("docs/deploy.md: the runbook's alert table (| Alert | Event | Severity | ...) not found")
	}
	for _, r := range rules {
		cells, ok := rows[r.name]
		switch {
		case !ok:
			c.errorf("docs/deploy.md: the alert table has no row for `%s`", r.name)
		case len(cells) < 5:
			c.errorf("docs/deploy.md: the row of `%s` has %d cells", r.name, len(cells))
		default:
			if cells[2] != r.severity {
				c.errorf("docs/deploy.md: `%s` has severity %s in the table, %s in alerts.bicep", r.name, cells[2], r.severity)
			}
			if want := freqDoc[r.frequency]; cells[len(cells)-1] != want {
				c.errorf("docs/deploy.md: `%s` is checked every %q in the table, %s (%q) in alerts.bicep", r.name, cells[len(cells)-1], r.frequency, want)
			}
		}
	}
	for _, name := range order {
		if !slices.ContainsFunc(rules, func(r alertRule) bool { return r.name == name }) {
			c.errorf("docs/deploy.md: the alert table lists `%s`, which alerts.bicep does not create", name)
		}
	}

	// Every place that states the count or the cost.
	flat := strings.Join(strings.Fields(doc), " ")
	for _, want := range []string{
		fmt.Sprintf("about **$%.2f a month** (%d rules at 5 min, %d at 15 min or 1 h)", cost, fast, slow),
		fmt.Sprintf("| Alert rules (`ALERTS_ENABLED`) | ~%.2f | %d log alert rules", cost, len(rules)),
		fmt.Sprintf("`false`: no alert rules (default `true`, about $%.2f a month)", cost),
		fmt.Sprintf("The alert rules add about $%.2f", cost),
	} {
		if !strings.Contains(flat, want) {
			c.errorf("docs/deploy.md does not say %q (%d rules: %d at 5 min, %d less often)", want, len(rules), fast, slow)
		}
	}
	return c.problems
}

func TestAlertCountAndCostMatchDocs(t *testing.T) {
	bicep, doc := string(readFile(t, "alerts.bicep")), string(readFile(t, "../docs/deploy.md"))
	for _, p := range alertCostProblems(bicep, doc) {
		t.Error(p)
	}
	rules, _ := alertRules(bicep)
	if len(rules) < 14 {
		t.Errorf("alerts.bicep: %d rules read; the reader is out of step with the file", len(rules))
	}
}

func TestAlertCountAndCostCatchDrift(t *testing.T) {
	bicep, doc := string(readFile(t, "alerts.bicep")), string(readFile(t, "../docs/deploy.md"))
	if p := alertCostProblems(bicep, doc); len(p) > 0 {
		t.Fatalf("the project itself has problems: %v", p)
	}
	newRule := "  {\n    name: 'extra'\n    event: 'item_failed'\n    severity: 3\n    description: ''\n    filter: ''\n    measure: ''\n    threshold: 0\n    window: t.window\n    frequency: t.frequency\n  }\n]"
	for _, tc := range []struct {
		name      string
		bicep     func(string) string
		doc       func(string) string
		wantSubst string
	}{
		{"a rule added to eventRules", func(s string) string {
			i := strings.Index(s, "var eventRules = [")
			list := balanced(s, i+len("var eventRules = "))
			return strings.Replace(s, list, strings.TrimSuffix(list, "]")+newRule, 1)
		}, nil, "no row for `extra`"},
		{"a rule made faster", func(s string) string {
			return strings.Replace(s, "frequency: 'PT15M'", "frequency: t.fastFrequency", 1)
		}, nil, "is checked every"},
		{"the cost left at the old count", nil, func(s string) string {
			return strings.Replace(s, "| Alert rules (`ALERTS_ENABLED`) | ~10.50 | 15 log alert rules", "| Alert rules (`ALERTS_ENABLED`) | ~9.50 | 13 log alert rules", 1)
		}, "log alert rules"},
		{"a severity changed in the doc only", nil, func(s string) string {
			return strings.Replace(s, "| `host-errors` | the host's own errors and exceptions, not a function's failed invocations | 1 |", "| `host-errors` | the host's own errors and exceptions, not a function's failed invocations | 2 |", 1)
		}, "`host-errors` has severity 2"},
		{"a row for a rule that does not exist", nil, func(s string) string {
			return strings.Replace(s, "| `http-5xx` |", "| `gone` | x | 2 | y | 15 min |\n| `http-5xx` |", 1)
		}, "lists `gone`"},
		{"query validation on", func(s string) string {
			return strings.Replace(s, "skipQueryValidation: true", "skipQueryValidation: false", 1)
		}, nil, "lacks skipQueryValidation"},
		{"the count output not updated", func(s string) string {
			return strings.Replace(s, "length(eventRules) + 4", "length(eventRules) + 3", 1)
		}, nil, "output alertRuleCount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, d := bicep, doc
			if tc.bicep != nil {
				b = tc.bicep(b)
			}
			if tc.doc != nil {
				d = tc.doc(d)
			}
			if b == bicep && d == doc {
				t.Fatal("the mutation changed nothing")
			}
			problems := alertCostProblems(b, d)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.wantSubst) }) {
				t.Errorf("problems %q lack %q", problems, tc.wantSubst)
			}
		})
	}
}
