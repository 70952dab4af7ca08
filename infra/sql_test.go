package infra

import (
	"regexp"
	"strings"
)

// checkSQLCreation: Azure SQL refuses to create a server with neither an admin login and password
// nor Entra-only authentication, so the server's own properties.administrators must say
// azureADOnlyAuthentication: true. Sending administrators again to an existing server has been
// reported to fail (github.com/Azure/bicep/issues/6858, github.com/Azure/bicep-types-az/issues/2320),
// so it is sent only while sqlServerExists is false, and main.bicepparam sets that from the previous
// provisioning's output. An application admin is named by its client id, not its object id.
func (p *project) checkSQLCreation(c *checker, server bicepResource, file string) {
	admins := ""
	if i := strings.Index(server.body, "administrators:"); i >= 0 {
		admins = balanced(server.body, i)
	}
	if admins == "" {
		c.errorf("Azure SQL %s: no properties.administrators: a server without an admin login is created only Entra-only, from its administrators", server.symbol)
		return
	}
	if v, _ := prop(admins, "azureADOnlyAuthentication"); v != "true" {
		c.errorf("Azure SQL %s: administrators.azureADOnlyAuthentication must be true at creation (no admin password otherwise), have %q", server.symbol, v)
	}
	if !regexp.MustCompile(`(?m)^\s*administrators:\s*sqlServerExists\s*\?\s*null\s*:\s*\{`).MatchString(server.body) {
		c.errorf("Azure SQL %s: administrators must be sent at creation only (administrators: sqlServerExists ? null : {...}); re-sending it fails re-provisioning", server.symbol)
	}
	if v, _ := prop(admins, "sid"); v != "sqlAdminSid" {
		c.errorf("Azure SQL %s: administrators.sid must be sqlAdminSid, have %q", server.symbol, v)
	}
	def := regexp.MustCompile(`(?ms)^var\s+sqlAdminSid\s*=(.*?)\n\S`).FindStringSubmatch(file + "\nx")
	if def == nil || !strings.Contains(def[1], "'Application'") || !strings.Contains(def[1], "principalClientId") || !strings.Contains(def[1], "fail(") {
		c.errorf("Azure SQL %s: var sqlAdminSid must use principalClientId for an 'Application' admin and fail() when it is empty", server.symbol)
	}
	// The flag comes from the previous provisioning: azd keeps its outputs in the environment.
	if !regexp.MustCompile(`(?m)^param sqlServerExists\s*=.*readEnvironmentVariable\('SQL_SERVER_FQDN'`).MatchString(p.bicepParam) {
		c.errorf("infra/main.bicepparam: sqlServerExists must be worked out from the previous provisioning's SQL_SERVER_FQDN output")
	}
	if !regexp.MustCompile(`(?m)^param principalClientId\s*=\s*readEnvironmentVariable\('AZURE_PRINCIPAL_CLIENT_ID'`).MatchString(p.bicepParam) {
		c.errorf("infra/main.bicepparam: principalClientId must read AZURE_PRINCIPAL_CLIENT_ID")
	}
}
