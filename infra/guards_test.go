package infra

import (
	"regexp"
	"strings"
	"testing"
)

// checkGuards: settings that must stop a deployment rather than deploy something broken, and
// the defaults a customer deployment should have.
func (p *project) checkGuards(c *checker, stripped map[string]string) {
	app, main, dbs := stripped["modules/app.bicep"], stripped["main.bicep"], stripped["modules/databases.bicep"]

	// Never an empty PostgreSQL password on the server or inside the fallback URL secret.
	if !regexp.MustCompile(`administratorLoginPassword:\s*empty\(postgresAdminPassword\)\s*\?\s*fail\(`).MatchString(dbs) {
		c.errorf("modules/databases.bicep: the PostgreSQL administratorLoginPassword must fail() when postgresAdminPassword is empty")
	}
	if !regexp.MustCompile(`value:\s*createDatabases && empty\(postgresAppPassword\)\s*\?\s*fail\(`).MatchString(app) {
		c.errorf("modules/app.bicep: the fallback secret must fail() instead of writing a URL with an empty postgresAppPassword")
	}

	// Key Vault purge protection: a parameter, on by default, never sent as false.
	if !regexp.MustCompile(`(?m)^param keyVaultPurgeProtection bool = true\s*$`).MatchString(main) {
		c.errorf("main.bicep: param keyVaultPurgeProtection bool must default to true")
	}
	if !regexp.MustCompile(`readEnvironmentVariable\('KEY_VAULT_PURGE_PROTECTION',\s*'true'\)`).MatchString(p.bicepParam) {
		c.errorf("infra/main.bicepparam: keyVaultPurgeProtection must read KEY_VAULT_PURGE_PROTECTION with default 'true'")
	}
	if v, _ := prop(app, "enablePurgeProtection"); v != "keyVaultPurgeProtection ? true : null" {
		c.errorf("modules/app.bicep: Key Vault enablePurgeProtection must be keyVaultPurgeProtection ? true : null (false is refused once on), have %q", v)
	}

	// Dashboard with Entra sign-in: browsers sign in at /.auth/login/aad and come back to it; a
	// restricted application list must admit the API's own registration (the browser's token).
	if v, _ := prop(app, "allowedApplications"); v != "empty(entraAllowedClientApplications) ? [] : union(entraAllowedClientApplications, [entraClientId])" {
		c.errorf("modules/app.bicep: allowedApplications must add entraClientId to a non-empty list (dashboard sign-in), have %q", v)
	}
	route := ""
	for _, b := range p.functions["Dashboard"] {
		if r, ok := b["route"].(string); ok {
			route = strings.TrimSuffix(strings.SplitN(r, "{", 2)[0], "/")
		}
	}
	want := "/.auth/login/aad?post_login_redirect_uri=/api/" + route
	if m := regexp.MustCompile(`(?m)^output DASHBOARD_SIGN_IN_URL string = (.*)$`).FindStringSubmatch(main); route == "" || m == nil || !strings.Contains(m[1], want+"'") {
		c.errorf("main.bicep: output DASHBOARD_SIGN_IN_URL must end in %s (the Dashboard function's route)", want)
	}
}

func TestGuardsCatchDrift(t *testing.T) {
	base := loadProject(t)
	replace := func(file, old, new string) func(*testing.T, *project) {
		return func(t *testing.T, p *project) {
			t.Helper()
			if file == "main.bicepparam" {
				p.bicepParam = strings.Replace(p.bicepParam, old, new, 1)
				return
			}
			if !strings.Contains(p.bicep[file], old) {
				t.Fatalf("%s does not contain %q", file, old)
			}
			p.bicep[file] = strings.Replace(p.bicep[file], old, new, 1)
		}
	}
	checkDrift(t, base, []drift{
		{"empty admin password sent", replace("modules/databases.bicep", "administratorLoginPassword: empty(postgresAdminPassword)\n      ? fail(", "administratorLoginPassword: empty(postgresAdminPassword)\n      ? ("), "administratorLoginPassword must fail()"},
		{"broken URL written", replace("modules/app.bicep", "value: createDatabases && empty(postgresAppPassword)", "value: empty(postgresAppPassword)"), "fallback secret must fail()"},
		{"purge protection off by default", replace("main.bicep", "param keyVaultPurgeProtection bool = true", "param keyVaultPurgeProtection bool = false"), "keyVaultPurgeProtection bool must default"},
		{"purge protection sent as false", replace("modules/app.bicep", "enablePurgeProtection: keyVaultPurgeProtection ? true : null", "enablePurgeProtection: keyVaultPurgeProtection"), "enablePurgeProtection"},
		{"purge protection off in parameters", replace("main.bicepparam", "readEnvironmentVariable('KEY_VAULT_PURGE_PROTECTION', 'true')", "readEnvironmentVariable('KEY_VAULT_PURGE_PROTECTION', 'false')"), "KEY_VAULT_PURGE_PROTECTION"},
		{"dashboard token not admitted", replace("modules/app.bicep", "union(entraAllowedClientApplications, [entraClientId])", "entraAllowedClientApplications"), "dashboard sign-in"},
		{"dashboard moved", func(t *testing.T, p *project) {
			p.functions["Dashboard"] = []map[string]any{{"type": "httpTrigger", "authLevel": "function", "route": "ui/{*path}"}}
		}, "DASHBOARD_SIGN_IN_URL"},
	})
}
