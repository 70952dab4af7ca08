package devhost

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// route is a parsed ASP.NET-style route template, as the Functions host
// uses for HTTP triggers: literal segments (matched case-insensitively),
// {name}, {name?}, {name=default}, {name:constraint(arg)...} and catch-all
// {*name}. Complex segments ("file.{ext}") are not supported.
type route struct {
	template string
	segs     []routeSeg
	rank     []int // precedence, lower sorts first
}

type routeSeg struct {
	literal     string
	param       string
	optional    bool
	catchAll    bool
	def         *string
	constraints []constraint
}

type constraint struct {
	name string
	args []string
	re   *regexp.Regexp
}

func parseRoute(tmpl string) (*route, error) {
	r := &route{template: tmpl}
	if tmpl == "" {
		return r, nil
	}
	parts := splitTemplate(tmpl)
	seenParams := map[string]bool{}
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("template %q: empty segment", tmpl)
		}
		if !strings.ContainsAny(p, "{}") {
			r.segs = append(r.segs, routeSeg{literal: p})
			r.rank = append(r.rank, 1)
			continue
		}
		if !strings.HasPrefix(p, "{") || !strings.HasSuffix(p, "}") || strings.Count(p, "{") != 1 {
			return nil, fmt.Errorf("template %q: segment %q: only whole-segment parameters like {id} are supported by devhost", tmpl, p)
		}
		s, err := parseParam(p[1 : len(p)-1])
		if err != nil {
			return nil, fmt.Errorf("template %q: %w", tmpl, err)
		}
		if seenParams[strings.ToLower(s.param)] {
			return nil, fmt.Errorf("template %q: parameter %q appears twice", tmpl, s.param)
		}
		seenParams[strings.ToLower(s.param)] = true
		if s.catchAll && i != len(parts)-1 {
			return nil, fmt.Errorf("template %q: catch-all {*%s} must be the last segment", tmpl, s.param)
		}
		rank := 3
		if len(s.constraints) > 0 {
			rank = 2
		}
		if s.catchAll {
			rank = 5
		}
		r.segs = append(r.segs, s)
		r.rank = append(r.rank, rank)
	}
	// Optional parameters may only be followed by optional ones.
	for i, s := range r.segs {
		if s.optional || s.def != nil {
			for _, t := range r.segs[i+1:] {
				if !(t.optional || t.def != nil || t.catchAll) {
					return nil, fmt.Errorf("template %q: optional parameter {%s} must be at the end", tmpl, s.param)
				}
			}
		}
	}
	return r, nil
}

// splitTemplate splits on '/' outside braces (a regex constraint may contain '/').
func splitTemplate(t string) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '{':
			depth++
		case '}':
			depth--
		case '/':
			if depth == 0 {
				parts = append(parts, t[start:i])
				start = i + 1
			}
		}
	}
	return append(parts, t[start:])
}

func parseParam(body string) (routeSeg, error) {
	var s routeSeg
	if strings.HasPrefix(body, "*") {
		s.catchAll = true
		body = strings.TrimLeft(body, "*")
	}
	// name ends at ':' '=' '?' or end
	end := strings.IndexAny(body, ":=?")
	if end < 0 {
		end = len(body)
	}
	s.param = body[:end]
	if s.param == "" {
		return s, fmt.Errorf("parameter without a name in {%s}", body)
	}
	rest := body[end:]
	if strings.HasSuffix(rest, "?") && !strings.HasSuffix(rest, `\?`) {
		s.optional = true
		rest = rest[:len(rest)-1]
	}
	if i := indexOutsideParens(rest, '='); i >= 0 {
		d := rest[i+1:]
		s.def = &d
		rest = rest[:i]
	}
	for rest != "" {
		if rest[0] != ':' {
			return s, fmt.Errorf("parameter {%s}: unexpected %q", body, rest)
		}
		rest = rest[1:]
		j := indexOutsideParens(rest, ':')
		if j < 0 {
			j = len(rest)
		}
		c, err := parseConstraint(rest[:j])
		if err != nil {
			return s, fmt.Errorf("parameter {%s}: %w", body, err)
		}
		s.constraints = append(s.constraints, c)
		rest = rest[j:]
	}
	return s, nil
}

func indexOutsideParens(s string, ch byte) int {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ch:
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func parseConstraint(s string) (constraint, error) {
	c := constraint{name: strings.ToLower(s)}
	if i := strings.IndexByte(s, '('); i >= 0 {
		if !strings.HasSuffix(s, ")") {
			return c, fmt.Errorf("constraint %q: missing ')'", s)
		}
		c.name = strings.ToLower(s[:i])
		inner := s[i+1 : len(s)-1]
		if c.name == "regex" {
			c.args = []string{inner}
		} else {
			for _, a := range strings.Split(inner, ",") {
				c.args = append(c.args, strings.TrimSpace(a))
			}
		}
	}
	nargs := map[string]int{
		"int": 0, "long": 0, "bool": 0, "datetime": 0, "decimal": 0, "double": 0, "float": 0,
		"guid": 0, "alpha": 0, "minlength": 1, "maxlength": 1, "min": 1, "max": 1, "range": 2, "regex": 1,
	}
	want, known := nargs[c.name]
	switch {
	case c.name == "length":
		if len(c.args) != 1 && len(c.args) != 2 {
			return c, fmt.Errorf("constraint %q: want length(n) or length(min,max)", s)
		}
	case !known:
		return c, fmt.Errorf("unknown route constraint %q", s)
	case len(c.args) != want:
		return c, fmt.Errorf("constraint %q: want %d argument(s)", s, want)
	}
	for _, a := range c.args {
		if c.name != "regex" {
			if _, err := strconv.ParseInt(a, 10, 64); err != nil {
				return c, fmt.Errorf("constraint %q: %q is not an integer", s, a)
			}
		}
	}
	if c.name == "regex" {
		// ASP.NET's regex constraint is case-insensitive and unanchored.
		re, err := regexp.Compile("(?i)" + c.args[0])
		if err != nil {
			return c, fmt.Errorf("constraint %q: %w", s, err)
		}
		c.re = re
	}
	return c, nil
}

var guidRE = regexp.MustCompile(`^(?i:\{?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\}?)$`)

func (c constraint) ok(v string) bool {
	n := func(i int) int64 { x, _ := strconv.ParseInt(c.args[i], 10, 64); return x }
	switch c.name {
	case "int":
		_, err := strconv.ParseInt(v, 10, 32)
		return err == nil
	case "long":
		_, err := strconv.ParseInt(v, 10, 64)
		return err == nil
	case "bool":
		return strings.EqualFold(v, "true") || strings.EqualFold(v, "false")
	case "decimal", "double", "float":
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	case "guid":
		return guidRE.MatchString(v)
	case "datetime":
		for _, l := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02", "01/02/2006"} {
			if _, err := time.Parse(l, v); err == nil {
				return true
			}
		}
		return false
	case "alpha":
		for _, r := range v {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
		return v != ""
	case "minlength":
		return int64(len([]rune(v))) >= n(0)
	case "maxlength":
		return int64(len([]rune(v))) <= n(0)
	case "length":
		l := int64(len([]rune(v)))
		if len(c.args) == 1 {
			return l == n(0)
		}
		return l >= n(0) && l <= n(1)
	case "min", "max", "range":
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return false
		}
		switch c.name {
		case "min":
			return x >= n(0)
		case "max":
			return x <= n(0)
		}
		return x >= n(0) && x <= n(1)
	case "regex":
		return c.re.MatchString(v)
	}
	return false
}

// pathSegments splits an escaped URL path into decoded segments, ignoring
// one trailing slash as ASP.NET routing does.
func pathSegments(escaped string) ([]string, bool) {
	p := strings.TrimPrefix(escaped, "/")
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return nil, true
	}
	raw := strings.Split(p, "/")
	out := make([]string, len(raw))
	for i, s := range raw {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		out[i] = d
	}
	return out, true
}

// match reports whether path segments match and returns the route values.
// Optional parameters without a value are absent from the result.
func (r *route) match(path []string) (map[string]string, bool) {
	vals := map[string]string{}
	if r.matchFrom(0, path, vals) {
		return vals, true
	}
	return nil, false
}

func (r *route) matchFrom(i int, path []string, vals map[string]string) bool {
	if i == len(r.segs) {
		return len(path) == 0
	}
	s := r.segs[i]
	if s.catchAll {
		v := strings.Join(path, "/")
		if v == "" {
			if s.def != nil {
				vals[s.param] = *s.def
			}
			return true
		}
		for _, c := range s.constraints {
			if !c.ok(v) {
				return false
			}
		}
		vals[s.param] = v
		return true
	}
	if len(path) == 0 {
		// Only optional/defaulted parameters may remain.
		for _, t := range r.segs[i:] {
			if t.literal != "" || !(t.optional || t.def != nil || t.catchAll) {
				return false
			}
			if t.def != nil {
				vals[t.param] = *t.def
			}
		}
		return true
	}
	if s.literal != "" {
		return strings.EqualFold(s.literal, path[0]) && r.matchFrom(i+1, path[1:], vals)
	}
	if path[0] == "" {
		return false
	}
	for _, c := range s.constraints {
		if !c.ok(path[0]) {
			return false
		}
	}
	vals[s.param] = path[0]
	if r.matchFrom(i+1, path[1:], vals) {
		return true
	}
	delete(vals, s.param)
	return false
}

// openable is the template up to its first optional, defaulted or
// catch-all parameter: "api/products/{*path}" -> "api/products", a path
// that matches the route as it stands.
func (r *route) openable() string {
	if r.template == "" {
		return ""
	}
	parts := splitTemplate(r.template)
	var out []string
	for i, s := range r.segs {
		if s.optional || s.def != nil || s.catchAll {
			break
		}
		out = append(out, parts[i])
	}
	return strings.Join(out, "/")
}

// less orders routes by ASP.NET-like precedence: literal segments before
// constrained parameters before plain parameters before catch-alls.
func (r *route) less(o *route) bool {
	for i := 0; i < len(r.rank) && i < len(o.rank); i++ {
		if r.rank[i] != o.rank[i] {
			return r.rank[i] < o.rank[i]
		}
	}
	if len(r.rank) != len(o.rank) {
		return len(r.rank) > len(o.rank)
	}
	return r.template < o.template
}
