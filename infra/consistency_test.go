package infra

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// project is everything the consistency checks read, loaded once so that tests can also
// check deliberately broken copies of it.
type project struct {
	bicep      map[string]string // path relative to infra/, slash-separated -> text
	bicepParam string            // infra/main.bicepparam
	azureYAML  string
	hostJSON   []byte
	functions  map[string][]map[string]any // function name -> its bindings
	local      map[string]string           // local.settings.json Values
	archDoc    string                      // docs/architecture.md
	code       map[string]string           // non-test Go files of handler/ and internal/config/, if present
}

// packageBinary is the handler's name in the deploy package (scripts/package.sh).
const packageBinary = "handler"

// storageConnections are the settings that hold a storage connection. Locally they are
// connection strings (UseDevelopmentStorage=true); in Azure each must be set in identity form
// instead, never as a connection string: every group below needs one of its suffixes set as
// <Name>__<suffix>. SyncStorage serves the queue triggers and the handler's own queue and
// table clients; AzureWebJobsStorage is the host's storage (blobs for locks, the rest optional).
var storageConnections = map[string][][]string{
	"SyncStorage":         {{"queueServiceUri"}, {"tableServiceUri"}, {"credential"}, {"clientId"}},
	"AzureWebJobsStorage": {{"accountName", "blobServiceUri"}, {"credential"}, {"clientId"}},
}

// localOnly are settings that exist only locally, with the reason Azure needs no app setting.
var localOnly = map[string]string{
	"FUNCTIONS_WORKER_RUNTIME": "Flex Consumption takes the runtime from functionAppConfig.runtime (checked below)",
	// The sync timers are switched off locally until the sync engine lands; in Azure they run.
}

// azureOnly are settings only Azure needs (Entra-authenticated Application Insights).
var azureOnly = []string{"APPLICATIONINSIGHTS_CONNECTION_STRING", "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"}

// keyVaultSettings must be Key Vault references, never values.
var keyVaultSettings = []string{"PRIMARY_DATABASE_URL", "FALLBACK_DATABASE_URL"}

// rejectedOnFlex are settings Flex Consumption refuses or that would bypass identity.
var rejectedOnFlex = []string{"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION", "WEBSITE_RUN_FROM_PACKAGE",
	"WEBSITE_CONTENTAZUREFILECONNECTIONSTRING", "WEBSITE_CONTENTSHARE", "AzureWebJobsStorage", "SyncStorage"}

// requiredRoles are the app identity's role assignments and the resource type each is scoped to.
var requiredRoles = []struct{ name, id, scopeType string }{
	{"Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Microsoft.Storage/storageAccounts"},
	{"Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Microsoft.Storage/storageAccounts"},
	{"Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Microsoft.Storage/storageAccounts"},
	{"Monitoring Metrics Publisher", "3913510d-42f4-4e42-8a64-420c390055eb", "Microsoft.Insights/components"},
	{"Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6", "Microsoft.KeyVault/vaults"},
}

// forbidden are texts that must not appear anywhere in infra/, azure.yaml or the parameters.
var forbidden = []struct {
	re  *regexp.Regexp
	why string
}{
	{regexp.MustCompile(`(?i)AccountKey\s*=`), "an account key"},
	{regexp.MustCompile(`(?i)DefaultEndpointsProtocol`), "a storage connection string"},
	{regexp.MustCompile(`(?i)SharedAccessSignature|[?&]sig=`), "a SAS token"},
	{regexp.MustCompile(`(?i)UseDevelopmentStorage`), "a local storage connection"},
	{regexp.MustCompile(`(?i)\blist(Keys|ConnectionStrings|AccountSas|ServiceSas)\s*\(`), "a key read from a resource (listKeys and friends)"},
	{regexp.MustCompile(`(?i)InstrumentationKey\s*=`), "an Application Insights instrumentation key"},
	{regexp.MustCompile(`(?i)\b\w*(password|passwd|pwd|secret)\s*[:=]\s*'[^'$]+'`), "a password or secret literal"},
	{regexp.MustCompile(`://[^\s'/@$]+:[^\s'/@$]+@`), "credentials inside a URL"},
}

func loadProject(t *testing.T) *project {
	t.Helper()
	root := ".." // tests run in infra/
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p := &project{bicep: map[string]string{}, functions: map[string][]map[string]any{}, code: map[string]string{}}
	err := filepath.WalkDir(".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(name, ".bicep") {
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			p.bicep[filepath.ToSlash(name)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"handler", "internal/config"} {
		gofiles, _ := filepath.Glob(filepath.Join(root, dir, "*.go"))
		for _, f := range gofiles {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			p.code[filepath.ToSlash(f)] = string(readFile(t, f))
		}
	}
	p.bicepParam = string(read("infra/main.bicepparam"))
	p.azureYAML = string(read("azure.yaml"))
	p.hostJSON = read("host.json")
	p.archDoc = string(read("docs/architecture.md"))
	var local struct{ Values map[string]string }
	if err := json.Unmarshal(read("local.settings.json"), &local); err != nil {
		t.Fatalf("local.settings.json: %v", err)
	}
	p.local = local.Values
	dirs, err := filepath.Glob(filepath.Join(root, "functions", "*", "function.json"))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no functions/*/function.json found (%v)", err)
	}
	for _, f := range dirs {
		var fj struct{ Bindings []map[string]any }
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &fj); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		p.functions[filepath.Base(filepath.Dir(f))] = fj.Bindings
	}
	return p
}

// clone returns a deep enough copy for a test to break one part.
func (p *project) clone() *project {
	q := *p
	q.bicep = map[string]string{}
	for k, v := range p.bicep {
		q.bicep[k] = v
	}
	q.local = map[string]string{}
	for k, v := range p.local {
		q.local[k] = v
	}
	q.code = map[string]string{}
	for k, v := range p.code {
		q.code[k] = v
	}
	q.functions = map[string][]map[string]any{}
	for k, v := range p.functions {
		q.functions[k] = slices.Clone(v)
	}
	return &q
}

type checker struct{ problems []string }

func (c *checker) errorf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

// check returns every disagreement between infra and the app, one line each.
func (p *project) check() []string {
	c := &checker{}
	stripped := map[string]string{}
	var resources []bicepResource
	for name, text := range p.bicep {
		stripped[name] = stripComments(text)
		resources = append(resources, parseResources(name, stripped[name])...)
	}
	ofType := func(typ string) []bicepResource {
		var out []bicepResource
		for _, r := range resources {
			if strings.EqualFold(r.typ, typ) {
				out = append(out, r)
			}
		}
		return out
	}
	symbol := func(file, sym string) (bicepResource, bool) {
		for _, r := range resources {
			if r.file == file && r.symbol == sym {
				return r, true
			}
		}
		return bicepResource{}, false
	}
	one := func(typ string) (bicepResource, bool) {
		rs := ofType(typ)
		if len(rs) != 1 {
			c.errorf("want exactly one %s resource, found %d", typ, len(rs))
			return bicepResource{}, false
		}
		return rs[0], true
	}
	want := func(r bicepResource, key, value string) {
		if v, ok := prop(r.body, key); !ok || v != value {
			c.errorf("%s %s (%s): want %s: %s, have %q", r.typ, r.symbol, r.file, key, value, v)
		}
	}

	p.checkForbidden(c)
	p.checkParamsAndModules(c, stripped)

	// The app's identity: one user-assigned identity, used by the site for everything.
	identity, hasIdentity := one("Microsoft.ManagedIdentity/userAssignedIdentities")

	// Storage: no shared keys, TLS 1.2, no public blobs.
	storage, hasStorage := one("Microsoft.Storage/storageAccounts")
	if hasStorage {
		want(storage, "allowSharedKeyAccess", "false")
		want(storage, "minimumTlsVersion", "'TLS1_2'")
		want(storage, "allowBlobPublicAccess", "false")
	}

	// Plan and site: Flex Consumption, Linux, custom handler runtime, HTTPS, TLS 1.2.
	if plan, ok := one("Microsoft.Web/serverfarms"); ok {
		sku := bicepResource{typ: plan.typ, symbol: plan.symbol + ".sku", file: plan.file, body: block(plan.body, "sku")}
		want(sku, "tier", "'FlexConsumption'")
		want(sku, "name", "'FC1'")
		want(plan, "reserved", "true")
	}
	site, hasSite := one("Microsoft.Web/sites")
	if hasSite {
		// Flex Consumption rejects siteConfig.ftpsState (there is no FTP on Flex).
		if _, ok := prop(site.body, "ftpsState"); ok {
			c.errorf("site %s: siteConfig.ftpsState is rejected on Flex Consumption; remove it", site.symbol)
		}
		for _, pol := range ofType("Microsoft.Web/sites/basicPublishingCredentialsPolicies") {
			if n, _ := prop(pol.body, "name"); n == "'ftp'" {
				c.errorf("%s: an FTP publishing-credentials policy on a Flex Consumption site (no FTP there); remove it", pol.symbol)
			}
		}
		// The site reads its package from the deployment container with its identity at once.
		deps := block(site.body, "dependsOn")
		for _, ct := range ofType("Microsoft.Storage/storageAccounts/blobServices/containers") {
			if !regexp.MustCompile(`\b` + ct.symbol + `\b`).MatchString(deps) {
				c.errorf("site %s: does not depend on its deployment container %s", site.symbol, ct.symbol)
			}
		}
		for _, ra := range ofType("Microsoft.Authorization/roleAssignments") {
			def, _ := prop(ra.body, "roleDefinitionId")
			if strings.Contains(def, "storageBlobDataOwnerRoleId") && !regexp.MustCompile(`\b`+ra.symbol+`\b`).MatchString(deps) {
				c.errorf("site %s: does not depend on its blob role assignment %s", site.symbol, ra.symbol)
			}
		}
		want(site, "kind", "'functionapp,linux'")
		want(site, "httpsOnly", "true")
		want(site, "minTlsVersion", "'1.2'")
		rt := block(block(site.body, "functionAppConfig"), "runtime")
		if n, _ := prop(rt, "name"); n != "'custom'" {
			c.errorf("site %s: functionAppConfig.runtime.name must be 'custom' (Go custom handler), have %q", site.symbol, n)
		}
		if v, _ := prop(rt, "version"); v != "'1.0'" {
			c.errorf("site %s: functionAppConfig.runtime.version must be '1.0', have %q", site.symbol, v)
		}
		dep := block(block(site.body, "functionAppConfig"), "deployment")
		want(bicepResource{typ: site.typ, symbol: site.symbol + ".deployment", file: site.file, body: dep}, "type", "'blobContainer'")
		auth := block(dep, "authentication")
		if v, _ := prop(auth, "type"); v != "'UserAssignedIdentity'" {
			c.errorf("site %s: the deployment container must be reached with the user-assigned identity, have %q", site.symbol, v)
		}
		if hasIdentity {
			idRef := identity.symbol + ".id"
			if v, _ := prop(auth, "userAssignedIdentityResourceId"); v != idRef {
				c.errorf("site %s: deployment userAssignedIdentityResourceId must be %s, have %q", site.symbol, idRef, v)
			}
			if v, _ := prop(site.body, "keyVaultReferenceIdentity"); v != idRef {
				c.errorf("site %s: keyVaultReferenceIdentity must be %s (Key Vault references resolve with it), have %q", site.symbol, idRef, v)
			}
			if !strings.Contains(block(site.body, "userAssignedIdentities"), "${"+idRef+"}") {
				c.errorf("site %s: identity %s is not attached (userAssignedIdentities)", site.symbol, identity.symbol)
			}
		}
		// The deployment container the site names must be created.
		value, _ := prop(dep, "value")
		found := false
		for _, ct := range ofType("Microsoft.Storage/storageAccounts/blobServices/containers") {
			if n, _ := prop(ct.body, "name"); n != "" && strings.Contains(value, strings.Trim(n, "'")) {
				found = true
			}
		}
		if !found {
			c.errorf("site %s: deployment container %s is not created in Bicep", site.symbol, value)
		}
	}

	if ai, ok := one("Microsoft.Insights/components"); ok {
		want(ai, "DisableLocalAuth", "true")
		if _, ok := prop(ai.body, "WorkspaceResourceId"); !ok {
			c.errorf("Application Insights %s: not on a Log Analytics workspace (WorkspaceResourceId)", ai.symbol)
		}
	}
	if kv, ok := one("Microsoft.KeyVault/vaults"); ok {
		want(kv, "enableRbacAuthorization", "true")
	}
	for _, r := range ofType("Microsoft.KeyVault/vaults/secrets") {
		if v, _ := prop(r.body, "value"); strings.HasPrefix(v, "'") {
			c.errorf("Key Vault secret %s: value is a literal; it must come from a @secure() param or a created resource", r.symbol)
		}
	}
	for _, r := range ofType("Microsoft.Sql/servers") {
		if _, ok := prop(r.body, "administratorLoginPassword"); ok {
			c.errorf("Azure SQL %s: has a SQL login password; Entra-only authentication is wanted", r.symbol)
		}
		if _, ok := prop(r.body, "administratorLogin"); ok {
			c.errorf("Azure SQL %s: has a SQL admin login; the server must be created Entra-only", r.symbol)
		}
		p.checkSQLCreation(c, r, stripped[r.file])
		child := func(typ, name string) (bicepResource, bool) {
			for _, ch := range ofType(typ) {
				if p, _ := prop(ch.body, "parent"); p == r.symbol {
					if n, _ := prop(ch.body, "name"); n != "'"+name+"'" {
						c.errorf("%s %s: name must be '%s', have %s", typ, ch.symbol, name, n)
					}
					return ch, true
				}
			}
			c.errorf("Azure SQL %s: no %s child resource (re-provisioning would not keep it)", r.symbol, typ)
			return bicepResource{}, false
		}
		if admin, ok := child("Microsoft.Sql/servers/administrators", "ActiveDirectory"); ok {
			want(admin, "administratorType", "'ActiveDirectory'")
			if v, _ := prop(admin.body, "sid"); v != "sqlAdminSid" {
				c.errorf("Azure SQL admin %s: sid must be sqlAdminSid (client id for an application), have %q", admin.symbol, v)
			}
		}
		if only, ok := child("Microsoft.Sql/servers/azureADOnlyAuthentications", "Default"); ok {
			want(only, "azureADOnlyAuthentication", "true")
		}
	}
	for _, r := range ofType("Microsoft.DBforPostgreSQL/flexibleServers") {
		want(r, "activeDirectoryAuth", "'Enabled'")
	}

	// App settings.
	settings := map[string]string{}
	var cfg []bicepResource
	for _, r := range ofType("Microsoft.Web/sites/config") {
		if n, _ := prop(r.body, "name"); n == "'appsettings'" {
			cfg = append(cfg, r)
		}
	}
	if len(cfg) != 1 {
		c.errorf("want exactly one Microsoft.Web/sites/config resource (name: 'appsettings'), found %d", len(cfg))
	} else {
		want(cfg[0], "name", "'appsettings'")
		if hasSite {
			want(cfg[0], "parent", site.symbol)
		}
		for _, kv := range topKeys(block(cfg[0].body, "properties")) {
			if _, dup := settings[kv.key]; dup {
				c.errorf("app setting %s is set twice", kv.key)
			}
			settings[kv.key] = kv.value
		}
	}
	p.checkSettings(c, settings, identity.symbol)
	p.checkPoolSettings(c, settings, stripped)
	p.checkKeyVaultReferences(c, settings, ofType("Microsoft.KeyVault/vaults/secrets"), stripped)
	p.checkPrincipalType(c, resources, stripped)

	// Queues and tables.
	created := func(typ, loopVar string) map[string]bool {
		out := map[string]bool{}
		for _, r := range ofType(typ) {
			loop := regexp.MustCompile(`^\[\s*for\s+(\w+)\s+in\s+(\w+)\s*:`).FindStringSubmatch(r.body)
			if loop != nil {
				for _, n := range arrayVars(stripped[r.file])[loop[2]] {
					out[n] = true
				}
				continue
			}
			if n, _ := prop(r.body, "name"); strings.HasPrefix(n, "'") {
				out[strings.Trim(n, "'")] = true
			}
		}
		return out
	}
	queues := created("Microsoft.Storage/storageAccounts/queueServices/queues", "")
	tables := created("Microsoft.Storage/storageAccounts/tableServices/tables", "")
	for _, q := range p.requiredQueues(c) {
		if !queues[q] {
			c.errorf("queue %s is used by the app but not created in Bicep", q)
		}
	}
	for _, tb := range p.requiredTables(c) {
		if !tables[tb] {
			c.errorf("table %s is used by the app but not created in Bicep", tb)
		}
	}
	validQueue := regexp.MustCompile(`^[a-z0-9](-?[a-z0-9])*$`)
	for q := range queues {
		if len(q) < 3 || len(q) > 63 || !validQueue.MatchString(q) {
			c.errorf("queue name %q is not a valid Azure queue name", q)
		}
	}
	validTable := regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]{2,62}$`)
	for tb := range tables {
		if !validTable.MatchString(tb) {
			c.errorf("table name %q is not a valid Azure table name", tb)
		}
	}

	// Roles of the app identity.
	for _, role := range requiredRoles {
		ok := false
		for _, ra := range ofType("Microsoft.Authorization/roleAssignments") {
			vars := stringVars(stripped[ra.file])
			def, _ := prop(ra.body, "roleDefinitionId")
			refersRole := strings.Contains(def, role.id)
			for name, v := range vars {
				if v == role.id && regexp.MustCompile(`\b`+name+`\b`).MatchString(def) {
					refersRole = true
				}
			}
			principal, _ := prop(ra.body, "principalId")
			scope, _ := prop(ra.body, "scope")
			scoped, _ := symbol(ra.file, scope)
			name, _ := prop(ra.body, "name")
			if refersRole && hasIdentity && principal == identity.symbol+".properties.principalId" &&
				strings.EqualFold(scoped.typ, role.scopeType) && strings.HasPrefix(name, "guid(") {
				ok = true
			}
		}
		if !ok {
			c.errorf("role %s (%s) is not assigned to the app identity with scope a %s and a guid() name",
				role.name, role.id, role.scopeType)
		}
	}

	p.checkHostAndAzd(c, resources)
	p.checkAuth(c, resources, stripped)
	p.checkGuards(c, stripped)
	sort.Strings(c.problems)
	return c.problems
}

func (p *project) checkForbidden(c *checker) {
	texts := map[string]string{"infra/main.bicepparam": p.bicepParam, "azure.yaml": p.azureYAML}
	for name, text := range p.bicep {
		texts["infra/"+name] = text
	}
	for name, text := range texts {
		for i, line := range strings.Split(text, "\n") {
			for _, f := range forbidden {
				if f.re.MatchString(line) {
					c.errorf("%s:%d holds %s: %s", name, i+1, f.why, strings.TrimSpace(line))
				}
			}
		}
	}
}

var sensitiveName = regexp.MustCompile(`(?i)password|secret|url$|connectionstring|key$`)

// checkParamsAndModules checks what the Bicep CLI would: modules get the params they declare,
// outputs they read exist, secrets are @secure() and never output, and main.bicepparam sets
// main.bicep's required params (secrets only from the environment).
func (p *project) checkParamsAndModules(c *checker, stripped map[string]string) {
	params := map[string]map[string]bicepParam{}
	outputs := map[string]map[string]string{}
	for name, text := range stripped {
		params[name] = parseParams(text)
		outputs[name] = map[string]string{}
		for _, m := range outputDecl.FindAllStringSubmatch(text, -1) {
			outputs[name][m[1]] = m[2]
		}
		for _, prm := range params[name] {
			if sensitiveName.MatchString(prm.name) && !prm.secure {
				c.errorf("%s: param %s looks sensitive but is not @secure()", name, prm.name)
			}
		}
		for out, expr := range outputs[name] {
			for _, prm := range params[name] {
				if prm.secure && regexp.MustCompile(`\b`+prm.name+`\b`).MatchString(expr) {
					c.errorf("%s: output %s exposes secure param %s", name, out, prm.name)
				}
			}
		}
	}
	for name, text := range stripped {
		for _, m := range parseModules(name, text) {
			target := path.Join(path.Dir(name), m.path)
			mp, ok := params[target]
			if !ok {
				c.errorf("%s: module %s refers to %s, which does not exist", name, m.symbol, target)
				continue
			}
			passed := map[string]bool{}
			for _, kv := range topKeys(block(m.body, "params")) {
				passed[kv.key] = true
				if _, ok := mp[kv.key]; !ok {
					c.errorf("%s: module %s passes %s, which %s does not declare", name, m.symbol, kv.key, target)
				}
			}
			for _, prm := range mp {
				if !prm.hasDefault && !passed[prm.name] {
					c.errorf("%s: module %s does not pass required param %s of %s", name, m.symbol, prm.name, target)
				}
			}
			re := regexp.MustCompile(`\b` + m.symbol + `!?\??\.outputs\.(\w+)`)
			for _, ref := range re.FindAllStringSubmatch(text, -1) {
				if _, ok := outputs[target][ref[1]]; !ok {
					c.errorf("%s: reads %s.outputs.%s, which %s does not output", name, m.symbol, ref[1], target)
				}
			}
		}
	}

	main := params["main.bicep"]
	if main == nil {
		c.errorf("infra/main.bicep is missing")
		return
	}
	if !regexp.MustCompile(`(?m)^using\s+'\./main\.bicep'`).MatchString(p.bicepParam) {
		c.errorf("infra/main.bicepparam must start with using './main.bicep'")
	}
	set := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^param\s+(\w+)\s*=\s*(.*)$`).FindAllStringSubmatch(stripComments(p.bicepParam), -1) {
		set[m[1]] = strings.TrimSpace(m[2])
	}
	for name, value := range set {
		prm, ok := main[name]
		if !ok {
			c.errorf("infra/main.bicepparam sets %s, which main.bicep does not declare", name)
			continue
		}
		if prm.secure && !strings.HasPrefix(value, "readEnvironmentVariable(") && value != "''" {
			c.errorf("infra/main.bicepparam: secure param %s must come from the environment, not a literal", name)
		}
	}
	for _, prm := range main {
		if !prm.hasDefault {
			if _, ok := set[prm.name]; !ok {
				c.errorf("infra/main.bicepparam does not set required param %s", prm.name)
			}
		}
	}
}

// hostProvided are environment variables the handler may read that are not app settings.
var hostProvided = map[string]string{
	"FUNCTIONS_CUSTOMHANDLER_PORT": "set by the Functions host for the handler",
}

// testOnly settings are read by the handler for tests and must never be set
// in Azure: the check below fails if Bicep sets one.
var testOnly = map[string]string{
	"DUALSYNC_CRASH_POINT": "fault injection: the handler exits mid-range (e2e TestDiffAndVerifyRunsFindRowsChangedBySQL)",
}

// getenvCall finds settings read by literal name in the handler's code.
var getenvCall = regexp.MustCompile(`(?:[Gg]etenv|LookupEnv)\(\s*"([^"]+)"\s*\)`)

// handlerSettings returns the setting names the handler and host read: the settings table of
// docs/architecture.md, local.settings.json Values, %Name% references in function.json, and
// getenv("NAME") calls in handler/ and internal/config/ once that code exists. Optional host.json
// overrides (AzureFunctionsJobHost__...) and variables the host sets are not app settings.
func (p *project) handlerSettings(c *checker) []string {
	seen := map[string]bool{}
	for _, row := range mdTable(p.archDoc, "| Name | Meaning |") {
		for _, n := range row {
			seen[n] = true
		}
	}
	if len(seen) == 0 {
		c.errorf("docs/architecture.md: settings table (| Name | Meaning | ...) not found")
	}
	for k := range p.local {
		seen[k] = true
	}
	for _, src := range p.code {
		for _, m := range getenvCall.FindAllStringSubmatch(src, -1) {
			if _, ok := hostProvided[m[1]]; !ok && !strings.HasPrefix(m[1], "AzureFunctionsJobHost__") {
				seen[m[1]] = true
			}
		}
	}
	pct := regexp.MustCompile(`%([A-Za-z0-9_]+)%`)
	for _, bindings := range p.functions {
		for _, b := range bindings {
			for _, v := range b {
				if s, ok := v.(string); ok {
					for _, m := range pct.FindAllStringSubmatch(s, -1) {
						seen[m[1]] = true
					}
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *project) checkSettings(c *checker, settings map[string]string, identitySymbol string) {
	connectionOf := func(name string) (string, bool) {
		conn, _, ok := strings.Cut(name, "__")
		_, known := storageConnections[conn]
		return conn, ok && known
	}
	for _, name := range p.handlerSettings(c) {
		if _, ok := localOnly[name]; ok {
			continue
		}
		if groups, ok := storageConnections[name]; ok {
			if _, set := settings[name]; set {
				c.errorf("app setting %s is a connection string; use the identity form %s__*", name, name)
			}
			for _, alternatives := range groups {
				have := false
				for _, suffix := range alternatives {
					if _, ok := settings[name+"__"+suffix]; ok {
						have = true
					}
				}
				if !have {
					c.errorf("storage connection %s: none of %s__{%s} is set in Bicep app settings",
						name, name, strings.Join(alternatives, ","))
				}
			}
			continue
		}
		if v := p.local[name]; strings.Contains(v, "UseDevelopmentStorage") || strings.Contains(v, "AccountKey") {
			c.errorf("setting %s holds a storage connection locally but is not in storageConnections: "+
				"add it there and set its identity form in Bicep", name)
			continue
		}
		if _, ok := connectionOf(name); ok && !strings.HasSuffix(name, "__credential") && !strings.HasSuffix(name, "__clientId") &&
			!strings.HasSuffix(name, "ServiceUri") && !strings.HasSuffix(name, "__accountName") {
			c.errorf("setting %s: unknown identity-based connection property", name)
		}
		if _, ok := testOnly[name]; ok {
			if _, set := settings[name]; set {
				c.errorf("setting %s is for tests only and must not be set in Bicep app settings", name)
			}
			continue
		}
		if _, ok := settings[name]; !ok {
			c.errorf("setting %s (read by the handler or host) is not set in Bicep app settings", name)
		}
	}
	for _, name := range azureOnly {
		if _, ok := settings[name]; !ok {
			c.errorf("setting %s is not set in Bicep app settings", name)
		}
	}
	// Every connection a function.json names must be an identity-based storage connection
	// with the service endpoint its bindings use.
	for fn, bindings := range p.functions {
		for _, b := range bindings {
			conn, _ := b["connection"].(string)
			typ, _ := b["type"].(string)
			if conn == "" {
				continue
			}
			if _, ok := storageConnections[conn]; !ok {
				c.errorf("function %s: connection %s has no identity-based settings in Bicep (add it to storageConnections)", fn, conn)
				continue
			}
			service := map[string]string{"queue": "queueServiceUri", "table": "tableServiceUri", "blob": "blobServiceUri"}
			for kind, suffix := range service {
				if strings.HasPrefix(strings.ToLower(typ), kind) {
					if _, ok := settings[conn+"__"+suffix]; !ok && !(conn == "AzureWebJobsStorage" && settings[conn+"__accountName"] != "") {
						c.errorf("function %s: %s binding on %s needs app setting %s__%s", fn, typ, conn, conn, suffix)
					}
				}
			}
		}
	}
	// Values: identity connections use the managed identity; secrets are Key Vault references.
	for name, value := range settings {
		if conn, ok := connectionOf(name); ok {
			switch {
			case strings.HasSuffix(name, "__credential") && value != "'managedidentity'":
				c.errorf("app setting %s must be 'managedidentity', have %s", name, value)
			case strings.HasSuffix(name, "__clientId") && value != identitySymbol+".properties.clientId":
				c.errorf("app setting %s must be the app identity's client id (%s.properties.clientId), have %s", name, identitySymbol, value)
			}
			_ = conn
		}
		if strings.Contains(value, "AccountKey") || strings.Contains(value, "connectionString(") {
			c.errorf("app setting %s holds a connection string with a key", name)
		}
	}
	for _, name := range keyVaultSettings {
		if v, ok := settings[name]; ok && !strings.HasPrefix(v, "'@Microsoft.KeyVault(SecretUri=") {
			c.errorf("app setting %s must be a Key Vault reference '@Microsoft.KeyVault(SecretUri=...)', have %s", name, v)
		}
	}
	for _, name := range rejectedOnFlex {
		if _, ok := settings[name]; ok {
			c.errorf("app setting %s must not be set (Flex Consumption with identity-based storage)", name)
		}
	}
	// And nothing set that nobody reads.
	known := map[string]bool{}
	for _, n := range p.handlerSettings(&checker{}) {
		known[n] = true
	}
	for _, n := range azureOnly {
		known[n] = true
	}
	for name := range settings {
		if _, ok := connectionOf(name); !known[name] && !ok {
			c.errorf("app setting %s is set in Bicep but read by nobody (not in docs/architecture.md or local.settings.json)", name)
		}
	}
}

// poolSettings are the handler's pool caps; each instance holds its own pools, so in Azure they
// must be derived from the instance cap, not fixed.
var poolSettings = []string{"PRIMARY_DB_MAX_CONNS", "FALLBACK_DB_MAX_CONNS"}

func (p *project) checkPoolSettings(c *checker, settings map[string]string, stripped map[string]string) {
	vars := map[string]string{}
	for _, text := range stripped {
		for _, m := range regexp.MustCompile(`(?m)^var\s+(\w+)\s*=\s*(.*)$`).FindAllStringSubmatch(text, -1) {
			vars[m[1]] = m[2]
		}
	}
	// expand follows vars a few levels deep.
	expand := func(expr string) string {
		for range 3 {
			for name, v := range vars {
				expr = regexp.MustCompile(`\b`+name+`\b`).ReplaceAllLiteralString(expr, "("+v+")")
			}
		}
		return expr
	}
	for _, name := range poolSettings {
		v, ok := settings[name]
		if !ok {
			c.errorf("app setting %s (connection pool cap) is not set in Bicep", name)
			continue
		}
		if !strings.Contains(expand(v), "maximumInstanceCount") {
			c.errorf("app setting %s = %s is not derived from maximumInstanceCount: every instance holds its own pool", name, v)
		}
	}
}

// checkKeyVaultReferences: a Key Vault reference names a secret this Bicep writes, or, where it
// writes it only on a condition, one it reads as existing otherwise, so that provisioning fails
// when the secret is missing instead of starting an app whose references cannot resolve.
func (p *project) checkKeyVaultReferences(c *checker, settings map[string]string, secrets []bicepResource, stripped map[string]string) {
	vars := map[string]string{}
	for _, text := range stripped {
		for _, m := range regexp.MustCompile(`(?m)^var\s+(\w+)\s*=\s*(.*)$`).FindAllStringSubmatch(text, -1) {
			vars[m[1]] = m[2]
		}
	}
	for _, name := range keyVaultSettings {
		v, ok := settings[name]
		if !ok {
			continue
		}
		m := regexp.MustCompile(`SecretUri=\$\{(\w+)\}`).FindStringSubmatch(v)
		if m == nil {
			c.errorf("app setting %s: the SecretUri must come from a secret resource's properties.secretUri (through a var), have %s", name, v)
			continue
		}
		expr := vars[m[1]]
		var written, kept *bicepResource
		for i, r := range secrets {
			if !regexp.MustCompile(`\b` + r.symbol + `!?\.properties\.secretUri\b`).MatchString(expr) {
				continue
			}
			if r.existing {
				kept = &secrets[i]
			} else {
				written = &secrets[i]
			}
		}
		switch {
		case written == nil:
			c.errorf("app setting %s: its SecretUri (%s) is not a written secret's properties.secretUri", name, m[1])
		case written.cond != "" && kept == nil:
			c.errorf("app setting %s: secret %s is written only if (%s), and nothing checks that it exists otherwise (an existing secret resource)", name, written.symbol, written.cond)
		case kept != nil:
			wn, _ := prop(written.body, "name")
			kn, _ := prop(kept.body, "name")
			if wn != kn {
				c.errorf("app setting %s: secrets %s (%s) and %s (%s) differ in name", name, written.symbol, wn, kept.symbol, kn)
			}
		}
	}
}

// checkPrincipalType: role assignments to the deployer fail with UnmatchedPrincipalType when the
// type is wrong, and azd sets no AZURE_PRINCIPAL_TYPE for a .bicepparam file: so no 'User'
// default in the parameters, main.bicep works the type out (deployer()), and every assignment
// to principalId uses the param, never a literal.
func (p *project) checkPrincipalType(c *checker, resources []bicepResource, stripped map[string]string) {
	if m := regexp.MustCompile(`readEnvironmentVariable\('AZURE_PRINCIPAL_TYPE',\s*'([^']*)'\)`).FindStringSubmatch(p.bicepParam); m == nil || m[1] != "" {
		c.errorf("infra/main.bicepparam: principalType must read AZURE_PRINCIPAL_TYPE with an empty default (azd does not set it; main.bicep works it out)")
	}
	main := stripped["main.bicep"]
	for _, mod := range parseModules("main.bicep", main) {
		for _, kv := range topKeys(block(mod.body, "params")) {
			if kv.key != "principalType" {
				continue
			}
			def := regexp.MustCompile(`(?ms)^var\s+` + regexp.QuoteMeta(kv.value) + `\s*=(.*?)\n\S`).FindStringSubmatch(main + "\nx")
			if def == nil || !strings.Contains(def[1], "deployer()") {
				c.errorf("main.bicep: module %s gets principalType %s, which is not worked out from deployer() when AZURE_PRINCIPAL_TYPE is unset", mod.symbol, kv.value)
			}
		}
	}
	for _, ra := range resources {
		if ra.typ != "Microsoft.Authorization/roleAssignments" {
			continue
		}
		if pid, _ := prop(ra.body, "principalId"); pid == "principalId" {
			if pt, _ := prop(ra.body, "principalType"); pt != "principalType" {
				c.errorf("role assignment %s to the deployer: principalType must be the principalType param, have %s", ra.symbol, pt)
			}
		}
	}
}

// requiredQueues: every queue a function binds to, the poison queue of each trigger queue, and
// the queues docs/architecture.md lists (the handler writes sync-plan and product-sync).
func (p *project) requiredQueues(c *checker) []string {
	seen := map[string]bool{}
	for _, bindings := range p.functions {
		for _, b := range bindings {
			typ, _ := b["type"].(string)
			name, _ := b["queueName"].(string)
			if name == "" || !strings.HasPrefix(strings.ToLower(typ), "queue") {
				continue
			}
			seen[name] = true
			if typ == "queueTrigger" && !strings.HasSuffix(name, "-poison") {
				seen[name+"-poison"] = true
			}
		}
	}
	docQueues := mdTable(p.archDoc, "| Queue |")
	if len(docQueues) == 0 {
		c.errorf("docs/architecture.md: queue table (| Queue | ...) not found")
	}
	for _, row := range docQueues {
		for _, n := range row {
			seen[n] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *project) requiredTables(c *checker) []string {
	var out []string
	for _, row := range mdTable(p.archDoc, "| Table |") {
		out = append(out, row...)
	}
	for _, bindings := range p.functions {
		for _, b := range bindings {
			if name, _ := b["tableName"].(string); name != "" {
				out = append(out, name)
			}
		}
	}
	if len(out) == 0 {
		c.errorf("docs/architecture.md: table list (| Table | ...) not found")
	}
	return out
}

func (p *project) checkHostAndAzd(c *checker, resources []bicepResource) {
	var host struct {
		CustomHandler struct {
			Description struct{ DefaultExecutablePath string }
		}
		ExtensionBundle struct{ ID string }
	}
	if err := json.Unmarshal(p.hostJSON, &host); err != nil {
		c.errorf("host.json: %v", err)
		return
	}
	if host.CustomHandler.Description.DefaultExecutablePath != packageBinary {
		c.errorf("host.json customHandler.description.defaultExecutablePath is %q; the package ships %q",
			host.CustomHandler.Description.DefaultExecutablePath, packageBinary)
	}
	if host.ExtensionBundle.ID != "Microsoft.Azure.Functions.ExtensionBundle" {
		c.errorf("host.json: the extension bundle (queue and timer triggers for custom handlers) is missing")
	}
	// azd finds the app by its azd-service-name tag; azure.yaml must name the same service.
	tag := regexp.MustCompile(`'azd-service-name'\s*:\s*'([^']+)'`)
	var service string
	for _, r := range resources {
		if r.typ == "Microsoft.Web/sites" {
			if m := tag.FindStringSubmatch(r.body); m != nil {
				service = m[1]
			}
		}
	}
	if service == "" {
		c.errorf("the function app has no 'azd-service-name' tag")
		return
	}
	svc := regexp.MustCompile(`(?m)^services:\s*\n\s+` + regexp.QuoteMeta(service) + `:\s*$`)
	if !svc.MatchString(p.azureYAML) {
		c.errorf("azure.yaml: no service %q (the function app's azd-service-name tag)", service)
	}
	for _, line := range []string{"language: custom", "host: function", "dist: dist/dualsync.zip"} {
		if !strings.Contains(p.azureYAML, line) {
			c.errorf("azure.yaml: want %q", line)
		}
	}
}

// mdTable returns, for the markdown table whose header line starts with header, the
// backticked names in the first cell of each row.
func mdTable(doc, header string) [][]string {
	lines := strings.Split(doc, "\n")
	tick := regexp.MustCompile("`([^`]+)`")
	for i, line := range lines {
		if !strings.HasPrefix(strings.TrimSpace(line), header) {
			continue
		}
		var rows [][]string
		for _, row := range lines[i+1:] {
			row = strings.TrimSpace(row)
			if !strings.HasPrefix(row, "|") {
				break
			}
			cells := strings.Split(row, "|")
			if len(cells) < 2 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
				continue
			}
			var names []string
			for _, m := range tick.FindAllStringSubmatch(cells[1], -1) {
				names = append(names, m[1])
			}
			rows = append(rows, names)
		}
		return rows
	}
	return nil
}

func TestInfraMatchesApp(t *testing.T) {
	p := loadProject(t)
	for _, problem := range p.check() {
		t.Error(problem)
	}
}

// TestChecksCatchDrift breaks one thing at a time and expects check to say so, so that a
// check that silently passes everything cannot go unnoticed.
func TestChecksCatchDrift(t *testing.T) {
	base := loadProject(t)
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
		{"poison queue missing", replace("modules/app.bicep", "  'product-sync-poison'\n", ""), "queue product-sync-poison"},
		{"table missing", replace("modules/app.bicep", "  'SyncResults'\n", ""), "table SyncResults"},
		{"setting missing", replace("modules/app.bicep", "    LOG_LEVEL: logLevel\n", ""), "setting LOG_LEVEL"},
		{"identity queue endpoint missing", replace("modules/app.bicep", "SyncStorage__queueServiceUri:", "SyncStorage__queueUri:"), "SyncStorage__{queueServiceUri}"},
		{"connection string with key", replace("modules/app.bicep", "    LOG_LEVEL: logLevel\n",
			"    LOG_LEVEL: logLevel\n    AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=abc'\n"), "account key"},
		{"listKeys", replace("modules/app.bicep", "    LOG_LEVEL: logLevel\n",
			"    LOG_LEVEL: logLevel\n    X: storage.listKeys().keys[0].value\n"), "listKeys"},
		{"shared key enabled", replace("modules/app.bicep", "allowSharedKeyAccess: false", "allowSharedKeyAccess: true"), "allowSharedKeyAccess"},
		{"role not assigned", replace("modules/app.bicep", "var keyVaultSecretsUserRoleId = '4633458b", "var keyVaultSecretsUserRoleId = '0000000b"), "Key Vault Secrets User"},
		{"role on wrong scope", replace("modules/app.bicep", "  scope: appInsights\n", "  scope: storage\n"), "Monitoring Metrics Publisher"},
		{"runtime not custom", replace("modules/app.bicep", "name: 'custom'", "name: 'node'"), "runtime.name"},
		{"secret as plain value", replace("modules/app.bicep", "PRIMARY_DATABASE_URL: '@Microsoft.KeyVault(", "PRIMARY_DATABASE_URL: 'x@Microsoft.KeyVault("), "Key Vault reference"},
		{"credential not managed identity", replace("modules/app.bicep", "SyncStorage__credential: 'managedidentity'", "SyncStorage__credential: 'azurecli'"), "SyncStorage__credential"},
		{"module param missing", replace("main.bicep", "    logLevel: logLevel\n", ""), "required param logLevel"},
		{"module output missing", replace("main.bicep", "app.outputs.keyVaultName", "app.outputs.vaultName"), "app.outputs.vaultName"},
		{"password literal in params", func(t *testing.T, p *project) {
			p.bicepParam = strings.Replace(p.bicepParam, "readEnvironmentVariable('POSTGRES_ADMIN_PASSWORD', '')", "'hunter2hunter2'", 1)
		}, "postgresAdminPassword"},
		{"secure param not secure", replace("main.bicep", "@secure()\n@description('When createDatabases is false: URL of the existing primary", "@description('When createDatabases is false: URL of the existing primary"), "primaryDatabaseUrl looks sensitive"},
		{"new local setting", func(t *testing.T, p *project) { p.local["NEW_SETTING"] = "1" }, "setting NEW_SETTING"},
		{"new setting in code", func(t *testing.T, p *project) {
			p.code["internal/config/x.go"] = `package config; func f(getenv func(string) string) { _ = getenv("SYNC_BATCH") }`
		}, "setting SYNC_BATCH"},
		{"new local connection", func(t *testing.T, p *project) { p.local["OtherStorage"] = "UseDevelopmentStorage=true" }, "OtherStorage"},
		{"new queue trigger", func(t *testing.T, p *project) {
			p.functions["Orders"] = []map[string]any{{"type": "queueTrigger", "queueName": "orders", "connection": "SyncStorage"}}
		}, "queue orders-poison"},
		{"unknown connection", func(t *testing.T, p *project) {
			p.functions["Orders"] = []map[string]any{{"type": "queueTrigger", "queueName": "sync-plan", "connection": "OrdersStorage"}}
		}, "connection OrdersStorage"},
		{"setting nobody reads", replace("modules/app.bicep", "    LOG_LEVEL: logLevel\n", "    LOG_LEVEL: logLevel\n    LOGLEVEL: logLevel\n"), "LOGLEVEL is set in Bicep but read by nobody"},
		{"Entra-only SQL off", replace("modules/databases.bicep", "    azureADOnlyAuthentication: true\n  }\n  dependsOn", "    azureADOnlyAuthentication: false\n  }\n  dependsOn"), "azureADOnlyAuthentication"},
		{"ftpsState back", replace("modules/app.bicep", "      minTlsVersion: '1.2'\n", "      minTlsVersion: '1.2'\n      ftpsState: 'Disabled'\n"), "ftpsState"},
		{"FTP policy back", replace("modules/app.bicep", "  name: 'scm'\n", "  name: 'ftp'\n"), "FTP publishing-credentials policy"},
		{"site without container dependency", replace("modules/app.bicep", "    deploymentContainer\n    appBlobDataOwner\n  ]\n}", "    appBlobDataOwner\n  ]\n}"), "deployment container"},
		{"site without blob role dependency", replace("modules/app.bicep", "    deploymentContainer\n    appBlobDataOwner\n  ]\n}", "    deploymentContainer\n  ]\n}"), "blob role assignment"},
		{"Entra-only off at creation", replace("modules/databases.bicep", "      azureADOnlyAuthentication: true\n      login:", "      azureADOnlyAuthentication: false\n      login:"), "must be true at creation"},
		{"no administrators at creation", replace("modules/databases.bicep", "    administrators: sqlServerExists ? null : {", "    other: sqlServerExists ? null : {"), "no properties.administrators"},
		{"administrators re-sent", replace("modules/databases.bicep", "administrators: sqlServerExists ? null : {", "administrators: {"), "sent at creation only"},
		{"SQL admin login back", replace("modules/databases.bicep", "    minimalTlsVersion: '1.2'\n    publicNetworkAccess: 'Enabled'\n    administrators", "    minimalTlsVersion: '1.2'\n    administratorLogin: 'sqladmin'\n    publicNetworkAccess: 'Enabled'\n    administrators"), "SQL admin login"},
		{"object id as an application's sid", replace("modules/databases.bicep", "      sid: sqlAdminSid\n      principalType", "      sid: principalId\n      principalType"), "administrators.sid must be sqlAdminSid"},
		{"child admin with object id", replace("modules/databases.bicep", "    sid: sqlAdminSid\n    tenantId", "    sid: principalId\n    tenantId"), "client id for an application"},
		{"sid ignores applications", replace("modules/databases.bicep", "sqlPrincipalType != 'Application'", "sqlPrincipalType != 'Group'"), "var sqlAdminSid"},
		{"exists flag not from outputs", func(t *testing.T, p *project) {
			p.bicepParam = strings.Replace(p.bicepParam, "readEnvironmentVariable('SQL_SERVER_FQDN', '')", "readEnvironmentVariable('SQL_EXISTS', '')", 1)
		}, "SQL_SERVER_FQDN"},
		{"client id not read", func(t *testing.T, p *project) {
			p.bicepParam = strings.Replace(p.bicepParam, "readEnvironmentVariable('AZURE_PRINCIPAL_CLIENT_ID', '')", "''", 1)
		}, "AZURE_PRINCIPAL_CLIENT_ID"},
		{"Entra-only child missing", replace("modules/databases.bicep", "'Microsoft.Sql/servers/azureADOnlyAuthentications@", "'Microsoft.Sql/servers/somethingElse@"), "azureADOnlyAuthentications child"},
		{"SQL admin child missing", replace("modules/databases.bicep", "'Microsoft.Sql/servers/administrators@", "'Microsoft.Sql/servers/somethingElse@"), "servers/administrators child"},
		{"principal type defaults to User", func(t *testing.T, p *project) {
			p.bicepParam = strings.Replace(p.bicepParam, "readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', '')", "readEnvironmentVariable('AZURE_PRINCIPAL_TYPE', 'User')", 1)
		}, "AZURE_PRINCIPAL_TYPE"},
		{"principal type not worked out", replace("main.bicep", "    principalType: effectivePrincipalType\n    createDatabases", "    principalType: principalType\n    createDatabases"), "deployer()"},
		{"literal principal type", replace("modules/app.bicep", "    principalId: principalId\n    principalType: principalType\n", "    principalId: principalId\n    principalType: 'User'\n"), "to the deployer"},
		{"pool size fixed", replace("modules/app.bicep", "PRIMARY_DB_MAX_CONNS: string(primaryMaxConns)", "PRIMARY_DB_MAX_CONNS: '10'"), "PRIMARY_DB_MAX_CONNS"},
		{"pool setting missing", replace("modules/app.bicep", "    FALLBACK_DB_MAX_CONNS: string(fallbackMaxConns)\n", ""), "FALLBACK_DB_MAX_CONNS"},
		{"secret existence not checked", replace("modules/app.bicep", "? primarySecret!.properties.secretUri : primarySecretKept!.properties.secretUri", "? primarySecret!.properties.secretUri : ''"), "nothing checks that it exists"},
		{"hand-built secret URI", replace("modules/app.bicep", "'@Microsoft.KeyVault(SecretUri=${fallbackSecretUri})'", "'@Microsoft.KeyVault(SecretUri=${keyVault.properties.vaultUri}secrets/x/)'"), "FALLBACK_DATABASE_URL: the SecretUri"},
	}
	checkDrift(t, base, cases)
}

func TestMdTable(t *testing.T) {
	doc := "x\n| Queue | Message |\n|---|---|\n| `a` | m |\n| `b`, `c` | n |\n\n| Queue | again |\n"
	got := mdTable(doc, "| Queue |")
	want := [][]string{{"a"}, {"b", "c"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("mdTable = %v, want %v", got, want)
	}
}

func TestStripCommentsKeepsURLs(t *testing.T) {
	in := "x: 'https://a/b' // note\n/* block */y: 1"
	if got, want := stripComments(in), "x: 'https://a/b' \ny: 1"; got != want {
		t.Fatalf("stripComments = %q, want %q", got, want)
	}
}

// drift is one way to break the infra; check must report a problem that
// mentions want.
type drift struct {
	name   string
	break_ func(*testing.T, *project)
	want   string
}

// checkDrift applies each drift to a copy of base and fails a case whose
// breakage check does not report.
func checkDrift(t *testing.T, base *project, cases []drift) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := base.clone()
			tc.break_(t, p)
			problems := p.check()
			for _, pr := range problems {
				if strings.Contains(pr, tc.want) {
					return
				}
			}
			t.Errorf("no problem mentions %q; got:\n%s", tc.want, strings.Join(problems, "\n"))
		})
	}
}
