package infra

// A small, deliberately plain reader of the Bicep in this directory. No Bicep CLI can be
// installed here, so the consistency tests read the files as text: resource declarations,
// their bodies (balanced brackets), top-level object keys, vars and params. It relies on the
// Bicep staying plain: one declaration per line start, objects written one key per line.

import (
	"regexp"
	"strings"
)

type bicepResource struct {
	file     string
	symbol   string
	typ      string // e.g. Microsoft.Storage/storageAccounts
	api      string
	cond     string // the if (...) condition, if any
	existing bool   // declared with existing: a reference, not a deployment
	body     string // from the opening { or [ to its match, inclusive
}

type bicepModule struct {
	file   string
	symbol string
	path   string // as written, relative to file
	body   string
}

type bicepParam struct {
	name, typ  string
	hasDefault bool
	secure     bool
}

var (
	resourceDecl = regexp.MustCompile(`(?m)^resource\s+(\w+)\s+'([^'@]+)@([^']+)'\s+(existing\s+)?=\s*(if\s*\((.*)\)\s*)?`)
	moduleDecl   = regexp.MustCompile(`(?m)^module\s+(\w+)\s+'([^']+)'\s*=\s*(if\s*\((.*)\)\s*)?`)
	paramDecl    = regexp.MustCompile(`(?m)^param\s+(\w+)\s+(\w+)(\s*=.*)?$`)
	outputDecl   = regexp.MustCompile(`(?m)^output\s+(\w+)\s+\w+\s*=\s*(.*)$`)
	stringVar    = regexp.MustCompile(`(?m)^var\s+(\w+)\s*=\s*'([^']*)'\s*$`)
	arrayVar     = regexp.MustCompile(`(?ms)^var\s+(\w+)\s*=\s*\[(.*?)^\]`)
	quoted       = regexp.MustCompile(`'([^']*)'`)
	objectKey    = regexp.MustCompile(`^\s*('([^']+)'|[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(.*?)\s*$`)
)

// stripComments removes // and /* */ comments outside single-quoted strings.
func stripComments(s string) string {
	var b strings.Builder
	inStr := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inStr:
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '\'' {
				inStr = false
			}
		case c == '\'':
			inStr = true
			b.WriteByte(c)
		case c == '/' && i+1 < len(s) && s[i+1] == '/':
			for i < len(s) && s[i] != '\n' {
				i++
			}
			if i < len(s) {
				b.WriteByte('\n')
			}
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			end := strings.Index(s[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			i += end + 3
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// balanced returns s[start:] up to and including the bracket that closes the first { or [
// at or after start. Brackets inside strings are skipped (interpolations are balanced anyway).
func balanced(s string, start int) string {
	open := strings.IndexAny(s[start:], "{[")
	if open < 0 {
		return ""
	}
	open += start
	depth, inStr := 0, false
	for i := open; i < len(s); i++ {
		c := s[i]
		if inStr {
			if c == '\\' {
				i++
			} else if c == '\'' {
				inStr = false
			}
			continue
		}
		switch c {
		case '\'':
			inStr = true
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return s[open : i+1]
			}
		}
	}
	return s[open:]
}

func parseResources(file, text string) []bicepResource {
	var out []bicepResource
	for _, m := range resourceDecl.FindAllStringSubmatchIndex(text, -1) {
		r := bicepResource{
			file:   file,
			symbol: text[m[2]:m[3]],
			typ:    text[m[4]:m[5]],
			api:    text[m[6]:m[7]],
			body:   balanced(text, m[1]),
		}
		if m[12] >= 0 {
			r.cond = text[m[12]:m[13]]
		}
		r.existing = m[8] >= 0
		out = append(out, r)
	}
	return out
}

func parseModules(file, text string) []bicepModule {
	var out []bicepModule
	for _, m := range moduleDecl.FindAllStringSubmatchIndex(text, -1) {
		out = append(out, bicepModule{file: file, symbol: text[m[2]:m[3]], path: text[m[4]:m[5]], body: balanced(text, m[1])})
	}
	return out
}

func parseParams(text string) map[string]bicepParam {
	out := map[string]bicepParam{}
	for _, m := range paramDecl.FindAllStringSubmatchIndex(text, -1) {
		p := bicepParam{name: text[m[2]:m[3]], typ: text[m[4]:m[5]], hasDefault: m[6] >= 0}
		// Decorators sit on the lines just above the declaration.
		before := text[:m[0]]
		lines := strings.Split(strings.TrimRight(before, "\n"), "\n")
		for i := len(lines) - 1; i >= 0 && strings.HasPrefix(strings.TrimSpace(lines[i]), "@"); i-- {
			if strings.HasPrefix(strings.TrimSpace(lines[i]), "@secure()") {
				p.secure = true
			}
		}
		out[p.name] = p
	}
	return out
}

// stringVars returns var name -> value for vars that are plain string literals.
func stringVars(text string) map[string]string {
	out := map[string]string{}
	for _, m := range stringVar.FindAllStringSubmatch(text, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// arrayVars returns var name -> string literals for vars that are arrays.
func arrayVars(text string) map[string][]string {
	out := map[string][]string{}
	for _, m := range arrayVar.FindAllStringSubmatch(text, -1) {
		for _, q := range quoted.FindAllStringSubmatch(m[2], -1) {
			out[m[1]] = append(out[m[1]], q[1])
		}
	}
	return out
}

// block returns the balanced { } or [ ] following the first "key:" in body, or "".
func block(body, key string) string {
	re := regexp.MustCompile(`(?m)(^|[\s{])` + regexp.QuoteMeta(key) + `\s*:\s*[{\[]`)
	loc := re.FindStringIndex(body)
	if loc == nil {
		return ""
	}
	return balanced(body, loc[1]-1)
}

type keyValue struct{ key, value string }

// topKeys returns the keys (and the rest of their line) directly inside an object block.
func topKeys(obj string) []keyValue {
	var out []keyValue
	depth := 0
	for _, line := range strings.Split(obj, "\n") {
		if depth == 1 {
			if m := objectKey.FindStringSubmatch(line); m != nil {
				k := m[1]
				if m[2] != "" {
					k = m[2]
				}
				out = append(out, keyValue{k, m[3]})
			}
		}
		depth += strings.Count(line, "{") + strings.Count(line, "[") - strings.Count(line, "}") - strings.Count(line, "]")
	}
	return out
}

// prop returns the value text of the first "key: value" line in body (any depth), or "".
func prop(body, key string) (string, bool) {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(key) + `\s*:\s*(.*?)\s*$`)
	m := re.FindStringSubmatch(body)
	if m == nil {
		return "", false
	}
	return m[1], true
}
