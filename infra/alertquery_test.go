package infra

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// nightlyMissingProblems checks the nightly-missing rule: quiet while the app is younger than
// nightlyMissingHours (no nightly run can have finished yet), loud once it is older.
func nightlyMissingProblems(bicep string) []string {
	c := &checker{}
	text := stripComments(bicep)
	var body string
	for _, r := range parseResources("alerts.bicep", text) {
		if r.symbol == "nightlyMissing" {
			body = r.body
		}
	}
	if body == "" {
		c.errorf("alerts.bicep: resource nightlyMissing not found")
		return c.problems
	}
	query, _ := prop(body, "query")
	young := regexp.MustCompile(`(?m)^var appYoung = '(.*)'$`).FindStringSubmatch(text)
	for _, want := range []string{
		`'union (${handlerEvents} | where event == "nightly_run_finished" | where timestamp > ago(${t.nightlyMissingHours}h)), (${appYoung})'`,
	} {
		if query != want {
			c.errorf("alerts.bicep: nightlyMissing query is %s, want %s", query, want)
		}
	}
	// appYoung yields one row only while the first trace in the window is younger than the
	// hours; none when the app logged nothing (a dead app must still fire).
	if young == nil || young[1] != `traces | summarize firstSeen = min(timestamp) | where firstSeen > ago(${t.nightlyMissingHours}h)` {
		c.errorf("alerts.bicep: var appYoung must be the app's first trace younger than nightlyMissingHours, got %v", young)
	}
	if op, _ := prop(body, "operator"); op != "'LessThan'" {
		c.errorf("alerts.bicep: nightlyMissing operator %s, want 'LessThan'", op)
	}
	if th, _ := prop(body, "threshold"); th != "1" {
		c.errorf("alerts.bicep: nightlyMissing threshold %s, want 1", th)
	}
	// The first trace of an app older than the window is the window's start: it must be older
	// than the hours, or the rule would never fire.
	hours := regexp.MustCompile(`(?m)^\s*nightlyMissingHours:\s*(\d+)`).FindStringSubmatch(text)
	window, _ := prop(body, "windowSize")
	windowHours := map[string]int{"'P1D'": 24, "'P2D'": 48}[window]
	if hours == nil || windowHours == 0 {
		c.errorf("alerts.bicep: nightlyMissing windowSize %s or nightlyMissingHours unreadable", window)
	} else if h, _ := strconv.Atoi(hours[1]); h >= windowHours {
		c.errorf("alerts.bicep: nightlyMissingHours %d is not below the window (%d h): the young-app clause would keep the rule quiet for ever", h, windowHours)
	}
	return c.problems
}

func TestNightlyMissingQuietWhileYoung(t *testing.T) {
	bicep := string(readFile(t, "alerts.bicep"))
	for _, p := range nightlyMissingProblems(bicep) {
		t.Error(p)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"the young-app clause dropped", `, (${appYoung})'`, `'`, "nightlyMissing query"},
		{"young-app without a bound", `| where firstSeen > ago(${t.nightlyMissingHours}h)'`, `'`, "var appYoung"},
		{"hours beyond the window", "nightlyMissingHours: 26", "nightlyMissingHours: 50", "not below the window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mutated := strings.Replace(bicep, tc.from, tc.to, 1)
			if mutated == bicep {
				t.Fatal("the mutation changed nothing")
			}
			p := nightlyMissingProblems(mutated)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("problems %q lack %q", p, tc.want)
			}
		})
	}
}

// samplingProblems: the handler's records (traces) and the host's errors (traces, exceptions)
// are never sampled, so an event rule sees every record; a rule over requests, which are still
// sampled, sums itemCount; the runbook says what is still sampled.
func samplingProblems(hostJSON []byte, bicep, doc string) []string {
	c := &checker{}
	var host struct {
		Logging struct {
			ApplicationInsights struct {
				SamplingSettings *struct {
					IsEnabled     *bool  `json:"isEnabled"`
					ExcludedTypes string `json:"excludedTypes"`
				} `json:"samplingSettings"`
			} `json:"applicationInsights"`
		} `json:"logging"`
	}
	if err := json.Unmarshal(hostJSON, &host); err != nil {
		c.errorf("host.json: %v", err)
		return c.problems
	}
	s := host.Logging.ApplicationInsights.SamplingSettings
	if s == nil || s.IsEnabled == nil || *s.IsEnabled {
		var excluded []string
		if s != nil {
			for _, ty := range strings.Split(s.ExcludedTypes, ";") {
				excluded = append(excluded, strings.ToLower(strings.TrimSpace(ty)))
			}
		}
		for _, ty := range []string{"trace", "exception"} {
			if !slices.Contains(excluded, ty) {
				c.errorf("host.json: adaptive sampling is on and logging.applicationInsights.samplingSettings.excludedTypes lacks %s: the alerts' records can be dropped", ty)
			}
		}
	}
	for _, m := range regexp.MustCompile(`query: '(requests [^']*)'`).FindAllStringSubmatch(stripComments(bicep), -1) {
		if !strings.Contains(m[1], "toint(itemCount)") {
			c.errorf("alerts.bicep: %q counts sampled requests by rows; sum itemCount", m[1])
		}
	}
	if !strings.Contains(doc, "What is still sampled") {
		c.errorf("docs/deploy.md: the runbook does not say what is still sampled")
	}
	return c.problems
}

func TestAlertedRecordsAreNotSampled(t *testing.T) {
	host, bicep, doc := readFile(t, "../host.json"), string(readFile(t, "alerts.bicep")), string(readFile(t, "../docs/deploy.md"))
	for _, p := range samplingProblems(host, bicep, doc) {
		t.Error(p)
	}
	for _, tc := range []struct {
		name             string
		host, bicep, doc func(string) string
		want             string
	}{
		{"sampling settings removed", func(s string) string {
			return strings.Replace(s, `"excludedTypes": "Trace;Exception"`, `"excludedTypes": "Request"`, 1)
		}, nil, nil, "lacks trace"},
		{"a request rule counting rows", nil, func(s string) string {
			return strings.Replace(s, " | extend requestCount = toint(itemCount)'", "'", 1)
		}, nil, "sum itemCount"},
		{"the runbook silent on sampling", nil, nil, func(s string) string {
			return strings.ReplaceAll(s, "What is still sampled", "Also")
		}, "what is still sampled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, b, d := string(host), bicep, doc
			if tc.host != nil {
				h = tc.host(h)
			}
			if tc.bicep != nil {
				b = tc.bicep(b)
			}
			if tc.doc != nil {
				d = tc.doc(d)
			}
			if h == string(host) && b == bicep && d == doc {
				t.Fatal("the mutation changed nothing")
			}
			p := samplingProblems([]byte(h), b, d)
			if !slices.ContainsFunc(p, func(s string) bool { return strings.Contains(s, tc.want) }) {
				t.Errorf("problems %q lack %q", p, tc.want)
			}
		})
	}
}
