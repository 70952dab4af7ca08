package infra

import (
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// anonymousFunctions are the only HTTP functions anyone may call, each with the reason. Every
// other HTTP function, including those added later, must say authLevel function or admin.
var anonymousFunctions = map[string]string{
	"Health": "probes by load balancers and monitors need no secret; it answers only {\"status\": ...}",
}

// checkAuth checks who may call what in Azure: function keys on every HTTP function but the
// anonymous ones, Entra ID sign-in (off by default) that answers 401 and lets exactly the
// anonymous routes through, and CORS that never allows every origin.
func (p *project) checkAuth(c *checker, resources []bicepResource, stripped map[string]string) {
	var host struct {
		Extensions struct {
			HTTP struct {
				RoutePrefix *string `json:"routePrefix"`
			} `json:"http"`
		} `json:"extensions"`
	}
	_ = json.Unmarshal(p.hostJSON, &host)
	prefix := "api"
	if host.Extensions.HTTP.RoutePrefix != nil {
		prefix = strings.Trim(*host.Extensions.HTTP.RoutePrefix, "/")
	}

	// Function keys.
	var openPaths []string
	names := make([]string, 0, len(p.functions))
	for fn := range p.functions {
		names = append(names, fn)
	}
	sort.Strings(names)
	for _, fn := range names {
		for _, b := range p.functions[fn] {
			if typ, _ := b["type"].(string); !strings.EqualFold(typ, "httpTrigger") {
				continue
			}
			level, set := b["authLevel"].(string)
			level = strings.ToLower(level)
			_, mayBeOpen := anonymousFunctions[fn]
			switch {
			case !set:
				c.errorf("function %s: authLevel is not set; say function (or admin) explicitly", fn)
			case level == "anonymous" && !mayBeOpen:
				c.errorf("function %s is authLevel anonymous: every HTTP function but %s needs authLevel function or admin", fn, strings.Join(keys(anonymousFunctions), ", "))
			case level == "anonymous":
				route, _ := b["route"].(string)
				if route == "" {
					route = fn
				}
				if strings.ContainsAny(route, "{}*") {
					c.errorf("function %s: an anonymous route must be literal (it is excluded from sign-in by exact path), have %q", fn, route)
				}
				openPaths = append(openPaths, "/"+strings.Trim(prefix+"/"+strings.Trim(route, "/"), "/"))
			case level != "function" && level != "admin":
				c.errorf("function %s: authLevel %q; want function or admin", fn, level)
			}
		}
	}

	// Entra ID sign-in (App Service Authentication).
	var auth []bicepResource
	for _, r := range resources {
		if strings.EqualFold(r.typ, "Microsoft.Web/sites/config") {
			if n, _ := prop(r.body, "name"); n == "'authsettingsV2'" {
				auth = append(auth, r)
			}
		}
	}
	if len(auth) != 1 {
		c.errorf("want exactly one Microsoft.Web/sites/config named 'authsettingsV2' (Entra ID sign-in), found %d", len(auth))
	} else {
		a := auth[0]
		if !regexp.MustCompile(`(?m)^param entraClientId string = ''\s*$`).MatchString(stripped["main.bicep"]) {
			c.errorf("main.bicep: param entraClientId must default to '' (Entra sign-in off by default)")
		}
		if a.cond == "" {
			c.errorf("authsettingsV2 %s is not conditional: Entra sign-in must be off unless entraClientId is set", a.symbol)
		}
		platform := block(a.body, "platform")
		if v, _ := prop(platform, "enabled"); v != "true" {
			c.errorf("authsettingsV2 %s: platform.enabled must be true, have %q", a.symbol, v)
		}
		validation := block(a.body, "globalValidation")
		if v, _ := prop(validation, "requireAuthentication"); v != "true" {
			c.errorf("authsettingsV2 %s: globalValidation.requireAuthentication must be true, have %q", a.symbol, v)
		}
		if v, _ := prop(validation, "unauthenticatedClientAction"); v != "'Return401'" {
			c.errorf("authsettingsV2 %s: unauthenticatedClientAction must be 'Return401' (an API has no login page), have %q", a.symbol, v)
		}
		var excluded []string
		for _, m := range quoted.FindAllStringSubmatch(block(validation, "excludedPaths"), -1) {
			excluded = append(excluded, m[1])
		}
		sort.Strings(excluded)
		sort.Strings(openPaths)
		if strings.Join(excluded, " ") != strings.Join(openPaths, " ") {
			c.errorf("authsettingsV2 %s: excludedPaths %v must be exactly the anonymous functions' routes %v", a.symbol, excluded, openPaths)
		}
		aad := block(a.body, "azureActiveDirectory")
		if v, _ := prop(aad, "enabled"); v != "true" {
			c.errorf("authsettingsV2 %s: identityProviders.azureActiveDirectory.enabled must be true, have %q", a.symbol, v)
		}
		if _, ok := prop(aad, "allowedAudiences"); !ok {
			c.errorf("authsettingsV2 %s: azureActiveDirectory.validation.allowedAudiences is not set", a.symbol)
		}
	}

	// CORS: a parameter, empty by default, never every origin.
	if !regexp.MustCompile(`(?m)^param corsAllowedOrigins array = \[\]\s*$`).MatchString(stripped["main.bicep"]) {
		c.errorf("main.bicep: param corsAllowedOrigins must default to [] (no cross-origin calls)")
	}
	for _, site := range resources {
		if !strings.EqualFold(site.typ, "Microsoft.Web/sites") {
			continue
		}
		cors := block(block(site.body, "siteConfig"), "cors")
		origins, _ := prop(cors, "allowedOrigins")
		m := regexp.MustCompile(`^filter\(corsAllowedOrigins,\s*(\w+)\s*=>\s*!contains\((\w+),\s*'\*'\)\)$`).FindStringSubmatch(origins)
		if m == nil || m[1] != m[2] {
			c.errorf("site %s: siteConfig.cors.allowedOrigins must be filter(corsAllowedOrigins, o => !contains(o, '*')), have %q", site.symbol, origins)
		}
		if v, _ := prop(cors, "supportCredentials"); v != "false" {
			c.errorf("site %s: siteConfig.cors.supportCredentials must be false, have %q", site.symbol, v)
		}
	}
	every := regexp.MustCompile(`allowedOrigins\s*:\s*\[[^\]]*'\*'|allowedOrigins\s*:\s*'\*'`)
	for name, text := range stripped {
		if every.MatchString(text) {
			c.errorf("%s: CORS allows every origin ('*')", name)
		}
	}
	for _, line := range strings.Split(stripComments(p.bicepParam), "\n") {
		if strings.Contains(line, "corsAllowedOrigins") && strings.Contains(line, "*") {
			c.errorf("infra/main.bicepparam: corsAllowedOrigins holds a wildcard: %s", strings.TrimSpace(line))
		}
	}
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestAuthChecksCatchDrift breaks one security property at a time and expects checkAuth to
// say so, including for HTTP functions added after this test was written.
func TestAuthChecksCatchDrift(t *testing.T) {
	base := loadProject(t)
	replace := func(file, old, new string) func(*testing.T, *project) {
		return func(t *testing.T, p *project) {
			t.Helper()
			text := p.bicep[file]
			if file == "main.bicepparam" {
				text = p.bicepParam
			}
			if !strings.Contains(text, old) {
				t.Fatalf("%s does not contain %q", file, old)
			}
			text = strings.Replace(text, old, new, 1)
			if file == "main.bicepparam" {
				p.bicepParam = text
			} else {
				p.bicep[file] = text
			}
		}
	}
	setLevel := func(fn, level string) func(*testing.T, *project) {
		return func(t *testing.T, p *project) {
			t.Helper()
			for i, b := range p.functions[fn] {
				if b["type"] == "httpTrigger" {
					nb := map[string]any{}
					for k, v := range b {
						nb[k] = v
					}
					if level == "" {
						delete(nb, "authLevel")
					} else {
						nb["authLevel"] = level
					}
					p.functions[fn][i] = nb
					return
				}
			}
			t.Fatalf("function %s has no httpTrigger", fn)
		}
	}
	newFunction := func(name string, binding map[string]any) func(*testing.T, *project) {
		return func(t *testing.T, p *project) {
			p.functions[name] = []map[string]any{binding, {"type": "http", "direction": "out", "name": "res"}}
		}
	}
	cases := []drift{
		{"Products anonymous", setLevel("Products", "anonymous"), "function Products is authLevel anonymous"},
		{"details anonymous", setLevel("HealthDetails", "anonymous"), "function HealthDetails is authLevel anonymous"},
		{"authLevel left to the default", setLevel("Users", ""), "function Users: authLevel is not set"},
		{"a later function anonymous", newFunction("Dashboard", map[string]any{"type": "httpTrigger", "name": "req", "authLevel": "anonymous", "route": "dashboard"}),
			"function Dashboard is authLevel anonymous"},
		{"a later function without authLevel", newFunction("OpenAPI", map[string]any{"type": "httpTrigger", "name": "req", "route": "openapi.json"}),
			"function OpenAPI: authLevel is not set"},
		{"login redirect", replace("modules/app.bicep", "unauthenticatedClientAction: 'Return401'", "unauthenticatedClientAction: 'RedirectToLoginPage'"), "Return401"},
		{"sign-in not required", replace("modules/app.bicep", "requireAuthentication: true", "requireAuthentication: false"), "requireAuthentication"},
		{"health not excluded", replace("modules/app.bicep", "        '/api/health'\n", ""), "excludedPaths"},
		{"details excluded too", replace("modules/app.bicep", "        '/api/health'\n", "        '/api/health'\n        '/api/health/details'\n"), "excludedPaths"},
		{"sign-in always on", replace("modules/app.bicep", "= if (entraEnabled) {\n  parent: functionApp\n  name: 'authsettingsV2'", "= {\n  parent: functionApp\n  name: 'authsettingsV2'"), "not conditional"},
		{"sign-in on by default", replace("main.bicep", "param entraClientId string = ''", "param entraClientId string = '00000000-0000-0000-0000-000000000000'"), "entraClientId must default"},
		{"sign-in missing", replace("modules/app.bicep", "name: 'authsettingsV2'", "name: 'authsettings'"), "authsettingsV2"},
		{"every origin", replace("modules/app.bicep", "allowedOrigins: filter(corsAllowedOrigins, origin => !contains(origin, '*'))", "allowedOrigins: ['*']"), "CORS allows every origin"},
		{"unfiltered origins", replace("modules/app.bicep", "allowedOrigins: filter(corsAllowedOrigins, origin => !contains(origin, '*'))", "allowedOrigins: corsAllowedOrigins"), "cors.allowedOrigins must be filter"},
		{"origins by default", replace("main.bicep", "param corsAllowedOrigins array = []", "param corsAllowedOrigins array = ['https://example.com']"), "corsAllowedOrigins must default"},
		{"wildcard in parameters", replace("main.bicepparam", "readEnvironmentVariable('CORS_ALLOWED_ORIGINS', '')) ? []", "readEnvironmentVariable('CORS_ALLOWED_ORIGINS', '')) ? ['*']"), "wildcard"},
		{"credentials", replace("modules/app.bicep", "supportCredentials: false", "supportCredentials: true"), "supportCredentials"},
	}
	checkDrift(t, base, cases)
}
