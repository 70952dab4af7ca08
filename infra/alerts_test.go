package infra

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"dualsync/internal/event"
)

// The alert rules in alerts.bicep select the handler's records by event name. These checks tie
// every name an alert uses to a constant of internal/event that the code emits, so an alert on a
// name nothing logs, or an event renamed on one side only, fails here; and every event that needs
// a person has a rule and a runbook entry.

// notAlerted are events no rule watches, with the reason.
var notAlerted = map[string]string{
	event.FailbackDone: "the all-clear of breaker_opened: informational, shown in the runbook's queries and /api/health/details",
	event.DatabaseRepaired: "the all-clear of database_regressed: informational, with the repair runs' counts; " +
		"the runbook's restore section says to wait for it",
	event.RunFinished: "a run's summary (counts, first failed and conflict items): its failures and conflicts " +
		"already raise item_failed and conflict_recorded, its failure run_failed",
}

type alertSources struct {
	bicep   string            // infra/alerts.bicep
	eventGo string            // internal/event/event.go
	code    map[string]string // non-test Go files outside internal/event: path -> text
	runbook string            // docs/deploy.md
}

func loadAlertSources(t *testing.T) alertSources {
	t.Helper()
	s := alertSources{bicep: string(readFile(t, "alerts.bicep")), eventGo: string(readFile(t, "../internal/event/event.go")),
		runbook: string(readFile(t, "../docs/deploy.md")), code: map[string]string{}}
	for _, dir := range []string{"../internal", "../handler"} {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") ||
				filepath.ToSlash(filepath.Dir(path)) == "../internal/event" {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			s.code[filepath.ToSlash(path)] = string(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return s
}

var (
	eventConst    = regexp.MustCompile(`(?m)^\s*([A-Z]\w*)\s*=\s*"([a-z0-9_]+)"`)
	ruleEvent     = regexp.MustCompile(`(?m)^\s*event:\s*'([^']*)'`)
	ruleName      = regexp.MustCompile(`(?m)^\s*name:\s*'([a-z0-9-]+)'\s*$`)
	queryEventLit = regexp.MustCompile(`event == "([a-z0-9_]+)"`)
	displayName   = regexp.MustCompile(`displayName:\s*'dualsync: ([^']+)'`)
)

// alertProblems returns every disagreement between the alerts, the event names and the code.
func alertProblems(s alertSources) []string {
	c := &checker{}
	bicep := stripComments(s.bicep)
	idents := map[string]string{} // event name -> Go constant
	for _, m := range eventConst.FindAllStringSubmatch(s.eventGo, -1) {
		if m[1] != "Key" {
			idents[m[2]] = m[1]
		}
	}
	emitted := func(name string) bool {
		id, ok := idents[name]
		if !ok {
			return false
		}
		use := regexp.MustCompile(`\bevent\.` + id + `\b`)
		for _, src := range s.code {
			if use.MatchString(src) {
				return true
			}
		}
		return false
	}

	// The names alerts select: the eventRules entries and literal event == "..." in queries.
	rulesBody := ""
	if i := strings.Index(bicep, "var eventRules = ["); i >= 0 {
		rulesBody = balanced(bicep, i+len("var eventRules = "))
	} else {
		c.errorf("alerts.bicep: var eventRules not found")
	}
	alerted := map[string]bool{}
	for _, m := range ruleEvent.FindAllStringSubmatch(rulesBody, -1) {
		alerted[m[1]] = true
	}
	for _, m := range queryEventLit.FindAllStringSubmatch(bicep, -1) {
		alerted[m[1]] = true
	}
	if len(alerted) == 0 {
		c.errorf("alerts.bicep: no alert selects an event")
	}
	for name := range alerted {
		_, known := idents[name]
		switch {
		case !known:
			c.errorf("alerts.bicep alerts on event %q, which internal/event does not define", name)
		case !emitted(name):
			c.errorf("alerts.bicep alerts on event %q (event.%s), which no code emits", name, idents[name])
		}
	}
	// The loop's query must select each rule's own event.
	if !strings.Contains(bicep, `event == "${r.event}"`) {
		c.errorf(`alerts.bicep: the event rules' query does not select event == "${r.event}"`)
	}
	// Every event that needs a person has a rule; every defined event is in event.All().
	for name, id := range idents {
		if !slices.Contains(event.All(), name) {
			c.errorf("internal/event: %s (%q) is missing from All()", id, name)
		}
		if !alerted[name] && notAlerted[name] == "" {
			c.errorf("event %q (event.%s) has no alert rule; add one to alerts.bicep or to notAlerted with the reason", name, id)
		}
	}
	// Rule names are distinct, and the runbook has an entry for each alert.
	seen := map[string]bool{}
	for _, m := range ruleName.FindAllStringSubmatch(rulesBody, -1) {
		if seen[m[1]] {
			c.errorf("alerts.bicep: two event rules named %s", m[1])
		}
		seen[m[1]] = true
	}
	for _, m := range displayName.FindAllStringSubmatch(bicep, -1) {
		n := m[1]
		if n == "${r.name}" {
			continue
		}
		seen[n] = true
	}
	for n := range seen {
		if !strings.Contains(s.runbook, "`"+n+"`") {
			c.errorf("docs/deploy.md: the runbook has no entry for alert `%s`", n)
		}
	}
	return c.problems
}

func TestAlertsMatchEvents(t *testing.T) {
	for _, p := range alertProblems(loadAlertSources(t)) {
		t.Error(p)
	}
	// The event the merge emits is defined, whoever emits it.
	if !slices.Contains(event.All(), "database_regressed") || event.DatabaseRegressed != "database_regressed" {
		t.Errorf("event.DatabaseRegressed = %q, want database_regressed in All()", event.DatabaseRegressed)
	}
}

// The checks above catch the drift they exist for.
func TestAlertChecksCatchDrift(t *testing.T) {
	base := loadAlertSources(t)
	if p := alertProblems(base); len(p) > 0 {
		t.Fatalf("the project itself has problems (TestAlertsMatchEvents lists them): %v", p)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*alertSources)
		want   string
	}{
		{"alert on a renamed event", func(s *alertSources) {
			s.bicep = strings.Replace(s.bicep, "event: 'item_failed'", "event: 'item_failure'", 1)
		}, `event "item_failure", which internal/event does not define`},
		{"event renamed in the code only", func(s *alertSources) {
			s.eventGo = strings.Replace(s.eventGo, `"outbox_stale"`, `"outbox_old"`, 1)
		}, `event "outbox_stale", which internal/event does not define`},
		{"event nobody emits", func(s *alertSources) {
			for k, v := range s.code {
				s.code[k] = strings.ReplaceAll(v, "event.RelayBacklog", "event.Other")
			}
		}, `"relay_backlog" (event.RelayBacklog), which no code emits`},
		{"event without a rule", func(s *alertSources) {
			s.bicep = strings.Replace(s.bicep, "event: 'run_failed'", "event: 'run_planned_one_side'", 1)
		}, `event "run_failed" (event.RunFailed) has no alert rule`},
		{"loop query ignores the rule's event", func(s *alertSources) {
			s.bicep = strings.Replace(s.bicep, `event == "${r.event}"`, `event != ""`, 1)
		}, `does not select event == "${r.event}"`},
		{"alert missing from the runbook", func(s *alertSources) {
			s.runbook = strings.ReplaceAll(s.runbook, "`outbox-stale`", "outbox stale")
		}, "no entry for alert `outbox-stale`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := base
			s.code = map[string]string{}
			for k, v := range base.code {
				s.code[k] = v
			}
			tc.mutate(&s)
			problems := alertProblems(s)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("problems %q lack %q", problems, tc.want)
			}
		})
	}
}
