package infra

import (
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestDeployDocCoversInfra: docs/deploy.md's route table names every HTTP function (added later
// too), and its settings name every environment variable main.bicepparam reads, so a first
// deployment never meets an undocumented route or setting.
func TestDeployDocCoversInfra(t *testing.T) {
	p := loadProject(t)
	doc := string(readFile(t, "../docs/deploy.md"))
	for _, problem := range p.checkDeployDoc(doc) {
		t.Error(problem)
	}
	// And the check notices a route or a variable missing.
	q := p.clone()
	q.functions["Reports"] = []map[string]any{{"type": "httpTrigger", "authLevel": "function", "route": "reports"}}
	q.bicepParam += "\nparam x = readEnvironmentVariable('SOME_NEW_SETTING', '')\n"
	got := strings.Join(q.checkDeployDoc(strings.Replace(doc, "# want 401", "# want 200", -1)), "\n")
	for _, want := range []string{"function Reports", "SOME_NEW_SETTING", "answers 401"} {
		if !strings.Contains(got, want) {
			t.Errorf("checkDeployDoc misses %s; got:\n%s", want, got)
		}
	}
}

func (p *project) checkDeployDoc(doc string) []string {
	var problems []string
	listed := map[string]bool{}
	inTable := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "| Route | Function |") {
			inTable = true
			continue
		}
		if inTable {
			if !strings.HasPrefix(line, "|") {
				break
			}
			if cells := strings.Split(line, "|"); len(cells) > 2 {
				listed[strings.TrimSpace(cells[2])] = true
			}
		}
	}
	var names []string
	for fn, bindings := range p.functions {
		for _, b := range bindings {
			if typ, _ := b["type"].(string); strings.EqualFold(typ, "httpTrigger") && !listed[fn] {
				names = append(names, fn)
			}
		}
	}
	sort.Strings(names)
	for _, fn := range names {
		problems = append(problems, "docs/deploy.md: route table (| Route | Function | ...) does not list HTTP function "+fn)
	}
	for _, m := range regexp.MustCompile(`readEnvironmentVariable\('([A-Z0-9_]+)'`).FindAllStringSubmatch(p.bicepParam, -1) {
		if !strings.Contains(doc, "`"+m[1]+"`") {
			problems = append(problems, "docs/deploy.md does not document `"+m[1]+"` (read by infra/main.bicepparam)")
		}
	}
	// With Entra sign-in in the Bicep, the doc must carry the post-deployment check that a key
	// without a token gets 401, and name the dashboard's sign-in output.
	for _, text := range p.bicep {
		if strings.Contains(text, "'authsettingsV2'") {
			if !regexp.MustCompile(`-H "x-functions-key: \$KEY" "\$FUNCTION_APP_URL/api/[^"]+"\s+# want 401`).MatchString(doc) {
				problems = append(problems, "docs/deploy.md: no post-deployment check that a call with a key and without a token answers 401")
			}
			if !strings.Contains(doc, "`DASHBOARD_SIGN_IN_URL`") {
				problems = append(problems, "docs/deploy.md does not name the `DASHBOARD_SIGN_IN_URL` output")
			}
			break
		}
	}
	return problems
}
