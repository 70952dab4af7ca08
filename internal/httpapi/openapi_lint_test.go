package httpapi

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"dualsync/internal/testenv"
)

// What the linters (Redocly, Spectral) warn about stays fixed: a license,
// servers a tool can call (local and Azure), every tag and operation
// described, a 4xx answer on every operation, no unused component.
func TestOpenAPILint(t *testing.T) {
	doc := loadDoc(t)
	if doc.Info.License == nil || doc.Info.License.Name == "" {
		t.Error("info.license is missing")
	}
	if !strings.Contains(doc.Info.Description, "Locally") || !strings.Contains(doc.Info.Description, "no key") {
		t.Error("info.description must say how local use differs (no key)")
	}

	// Servers: the local one is where `make run` serves (local.settings.json's
	// port, host.json's route prefix); the Azure one has its app name as a
	// variable with a default.
	root := testenv.RepoRoot(t)
	var settings struct{ Host struct{ LocalHttpPort int } }
	var host struct {
		Extensions struct{ HTTP struct{ RoutePrefix string } } `json:"extensions"`
	}
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(root, "local.settings.json"))), &settings); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(must(os.ReadFile(filepath.Join(root, "host.json"))), &host); err != nil {
		t.Fatal(err)
	}
	if host.Extensions.HTTP.RoutePrefix == "" {
		host.Extensions.HTTP.RoutePrefix = "api"
	}
	wantLocal := "http://localhost:" + strconv.Itoa(settings.Host.LocalHttpPort) + "/" + host.Extensions.HTTP.RoutePrefix
	if len(doc.Servers) != 2 {
		t.Fatalf("servers = %d, want local and Azure", len(doc.Servers))
	}
	if got := doc.Servers[0]; got.URL != wantLocal || !strings.Contains(got.Description, "No function key") {
		t.Errorf("servers[0] = %q (%q), want %q saying no key is needed", got.URL, got.Description, wantLocal)
	}
	az := doc.Servers[1]
	if az.URL != "https://{appName}.azurewebsites.net/"+host.Extensions.HTTP.RoutePrefix {
		t.Errorf("servers[1] = %q", az.URL)
	}
	if v := az.Variables["appName"]; v == nil || v.Default == "" || v.Description == "" {
		t.Errorf("servers[1] needs an appName variable with a default and a description: %+v", v)
	}

	used := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Summary == "" || op.Description == "" || op.OperationID == "" || len(op.Tags) == 0 {
				t.Errorf("%s %s: summary, description, operationId and tags are all needed", method, path)
			}
			for _, tag := range op.Tags {
				used[tag] = true
			}
			has4xx := false
			for code := range op.Responses.Map() {
				has4xx = has4xx || strings.HasPrefix(code, "4")
			}
			if !has4xx {
				t.Errorf("%s %s documents no 4xx answer", method, path)
			}
		}
	}
	for _, tag := range doc.Tags {
		if tag.Description == "" || !used[tag.Name] {
			t.Errorf("tag %q: described %v, used %v", tag.Name, tag.Description != "", used[tag.Name])
		}
	}

	// Every component is referenced from somewhere else in the document.
	raw := string(openapiJSON)
	var comps map[string]map[string]json.RawMessage
	var whole struct {
		Components map[string]map[string]json.RawMessage `json:"components"`
	}
	if err := json.Unmarshal(openapiJSON, &whole); err != nil {
		t.Fatal(err)
	}
	comps = whole.Components
	for kind, m := range comps {
		if kind == "securitySchemes" { // named in security requirements, not $ref
			continue
		}
		for name := range m {
			if !strings.Contains(raw, `"#/components/`+kind+`/`+name+`"`) {
				t.Errorf("components.%s.%s is not used", kind, name)
			}
		}
	}
}

// Money is never a binary float in what generators read: no schema of the
// document is a number (integers are fine; extensions, which generators
// ignore, may describe the number form the API also accepts).
func TestOpenAPINoFloats(t *testing.T) {
	var doc any
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "number" {
				t.Errorf("%s is type number: generators make it a float", path)
			}
			for k, c := range x {
				if strings.HasPrefix(k, "x-") || k == "example" || k == "examples" {
					continue
				}
				walk(path+"/"+k, c)
			}
		case []any:
			for i, c := range x {
				walk(path+"/"+strconv.Itoa(i), c)
			}
		}
	}
	walk("#", doc)
	money := loadDoc(t).Components.Schemas["MoneyInput"].Value
	if money.AnyOf == nil || money.AnyOf[0].Value.Type.Is("string") == false {
		t.Fatalf("the checker sees MoneyInput as %+v, want anyOf [string, x-also-accepts]", money)
	}
	re := regexp.MustCompile(money.AnyOf[0].Value.Pattern)
	for _, ok := range []string{"0", "0.10", "12345678.91", "99999999.99", " 1.500 "} {
		if !re.MatchString(ok) {
			t.Errorf("MoneyInput's pattern refuses %q", ok)
		}
	}
	for _, bad := range []string{"100000000", "1.001", "1e3", "-1", ""} {
		if re.MatchString(bad) {
			t.Errorf("MoneyInput's pattern accepts %q", bad)
		}
	}
}

// No two HTTP functions' routes match one path: the Azure host tries routes
// in the order it registered the functions, not by precedence
// (Azure/azure-functions-host#9876, #3153: WebJobsRouter is a
// RouteCollection, first match wins), so an overlap would make which
// function (and which authLevel) answers depend on that order.
func TestFunctionRoutesDoNotOverlap(t *testing.T) {
	fns := functionFolders(t)
	var samples []string
	for _, f := range fns {
		if !f.http {
			continue
		}
		first, _, _ := strings.Cut(strings.TrimPrefix(f.route.String(), "^"), "/")
		first = strings.NewReplacer(`\`, "", "(", "", ")", "", "?", "", "$", "").Replace(first)
		for _, tail := range []string{"", "/1", "/details", "/1/results", "/a/b/c"} {
			samples = append(samples, first+tail)
		}
	}
	for _, s := range samples {
		var by []string
		for name, f := range fns {
			if f.http && f.route.MatchString(s) {
				by = append(by, name)
			}
		}
		if len(by) > 1 {
			t.Errorf("/api/%s matches the routes of %v", s, by)
		}
	}
}
