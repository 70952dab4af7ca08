package infra

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The databases' published connection limits the Bicep's defaults are sized for.
const (
	// Azure SQL Database Basic (5 DTU): 30 concurrent workers
	// (https://learn.microsoft.com/azure/azure-sql/database/resource-limits-dtu-single-databases).
	azureSQLBasicLimit = 30
	// Azure Database for PostgreSQL flexible server, Burstable B1ms: max_connections 50, of which
	// 15 are reserved for Azure's own use
	// (https://learn.microsoft.com/azure/postgresql/flexible-server/concepts-limits).
	postgresB1msLimit = 50 - 15
	// Below this the handler's pool would let one slow call queue every other.
	minConnsPerInstance = 2
)

// scaleGroups counts Flex Consumption's scale groups for the app's functions: all HTTP functions
// scale together, every other function on its own
// (https://learn.microsoft.com/azure/azure-functions/flex-consumption-plan#per-function-scaling).
func (p *project) scaleGroups() (groups int, names []string) {
	http := false
	for fn, bindings := range p.functions {
		for _, b := range bindings {
			typ, _ := b["type"].(string)
			if !strings.HasSuffix(strings.ToLower(typ), "trigger") {
				continue
			}
			if strings.EqualFold(typ, "httpTrigger") {
				http = true
			} else {
				groups++
				names = append(names, fn)
			}
		}
	}
	if http {
		groups++
		names = append(names, "HTTP")
	}
	sort.Strings(names)
	return groups, names
}

// checkConnections: in the worst case every scale group runs maximumInstanceCount instances, each
// with its own pool per database, and together they must stay within each database's limit, with
// at least minConnsPerInstance per instance. The Bicep computes the per-instance caps; this
// recomputes them from its defaults and fails when the arithmetic does not hold.
func (p *project) checkConnections(c *checker, scaleDoc string) {
	app := stripComments(p.bicep["modules/app.bicep"])
	main := stripComments(p.bicep["main.bicep"])
	groups, names := p.scaleGroups()
	m := regexp.MustCompile(`(?m)^var scaleGroups = (\d+)\s*$`).FindStringSubmatch(app)
	if m == nil {
		c.errorf("modules/app.bicep: no var scaleGroups = <n>")
		return
	}
	if n, _ := strconv.Atoi(m[1]); n != groups {
		c.errorf("modules/app.bicep: var scaleGroups = %d, but functions/ makes %d scale groups (%s)", n, groups, strings.Join(names, ", "))
	}
	if !regexp.MustCompile(`(?m)^var worstCaseInstances = scaleGroups \* maximumInstanceCount\s*$`).MatchString(app) {
		c.errorf("modules/app.bicep: var worstCaseInstances must be scaleGroups * maximumInstanceCount")
	}
	def := func(name string) int {
		m := regexp.MustCompile(`(?m)^param ` + name + ` int = (\d+)`).FindStringSubmatch(main)
		if m == nil {
			c.errorf("main.bicep: no int default for %s", name)
			return 0
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	instances := def("maximumInstanceCount")
	for _, db := range []struct {
		limitParam, capVar, name string
		published                int
	}{
		{"primaryConnectionLimit", "primaryMaxConns", "primary", azureSQLBasicLimit},
		{"fallbackConnectionLimit", "fallbackMaxConns", "fallback", postgresB1msLimit},
	} {
		limit := def(db.limitParam)
		if limit > db.published {
			c.errorf("main.bicep: %s defaults to %d, more than the created %s database allows the app (%d)", db.limitParam, limit, db.name, db.published)
		}
		body := regexp.MustCompile(`(?ms)^var ` + db.capVar + ` =(.*?)\n\S`).FindStringSubmatch(app + "\nx")
		if body == nil || !strings.Contains(body[1], db.limitParam+" / worstCaseInstances") || !strings.Contains(body[1], "fail(") {
			c.errorf("modules/app.bicep: var %s must be %s / worstCaseInstances, with fail() below %d", db.capVar, db.limitParam, minConnsPerInstance)
			continue
		}
		if instances == 0 || groups == 0 {
			continue
		}
		per := limit / (groups * instances)
		total := groups * instances * per
		switch {
		case per < minConnsPerInstance:
			c.errorf("%s database: %d / (%d scale groups x %d instances) = %d connections per instance, below %d: lower maximumInstanceCount", db.name, limit, groups, instances, per, minConnsPerInstance)
		case total > limit:
			c.errorf("%s database: %d scale groups x %d instances x %d = %d connections, over its limit %d", db.name, groups, instances, per, total, limit)
		}
		want := fmt.Sprintf("%d scale groups × %d instances × %d connections = %d of the %s's %d", groups, instances, per, total, db.name, limit)
		if !strings.Contains(scaleDoc, want) {
			c.errorf("docs/scale.md does not say %q", want)
		}
	}
}

func TestConnectionBudget(t *testing.T) {
	p := loadProject(t)
	c := &checker{}
	p.checkConnections(c, scaleDocText(t))
	for _, problem := range c.problems {
		t.Error(problem)
	}
}

func scaleDocText(t *testing.T) string {
	t.Helper()
	return strings.Join(strings.Fields(string(readFile(t, "../docs/scale.md"))), " ")
}

// TestConnectionBudgetCatchesDrift breaks the arithmetic one way at a time.
func TestConnectionBudgetCatchesDrift(t *testing.T) {
	base := loadProject(t)
	doc := scaleDocText(t)
	replace := func(file, old, new string) func(*testing.T, *project) {
		return func(t *testing.T, p *project) {
			t.Helper()
			if !strings.Contains(p.bicep[file], old) {
				t.Fatalf("%s does not contain %q", file, old)
			}
			p.bicep[file] = strings.Replace(p.bicep[file], old, new, 1)
		}
	}
	cases := []drift{
		{"more instances than the databases allow", replace("main.bicep", "param maximumInstanceCount int = 2", "param maximumInstanceCount int = 3"), "below 2"},
		{"the old per-app arithmetic", replace("modules/app.bicep", "var worstCaseInstances = scaleGroups * maximumInstanceCount", "var worstCaseInstances = maximumInstanceCount"), "worstCaseInstances must be"},
		{"groups miscounted", replace("modules/app.bicep", "var scaleGroups = 7", "var scaleGroups = 1"), "scale groups"},
		{"a new queue function", func(t *testing.T, p *project) {
			p.functions["Orders"] = []map[string]any{{"type": "queueTrigger", "queueName": "orders", "connection": "SyncStorage"}}
		}, "makes 8 scale groups"},
		{"B1ms limit exceeded", replace("main.bicep", "param fallbackConnectionLimit int = 35", "param fallbackConnectionLimit int = 40"), "more than the created fallback"},
		{"cap without floor", replace("modules/app.bicep", "  : fail('fallbackConnectionLimit", "  : ('fallbackConnectionLimit"), "fallbackMaxConns must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base.clone()
			tc.break_(t, p)
			c := &checker{}
			p.checkConnections(c, doc)
			for _, pr := range c.problems {
				if strings.Contains(pr, tc.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got:\n%s", tc.want, strings.Join(c.problems, "\n"))
		})
	}
}
