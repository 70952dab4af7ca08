package devhost

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Authorization levels of an httpTrigger's authLevel, lower-cased.
const (
	levelAnonymous = "anonymous"
	levelFunction  = "function"
	levelSystem    = "system"
	levelAdmin     = "admin"
	levelUser      = "user"
)

// keyHeader and keyQuery carry a key, as in the Azure host: the header wins
// when both are present.
const (
	keyHeader = "x-functions-key"
	keyQuery  = "code"
)

// Keys are the function keys devhost enforces when started with -keys, read
// by LoadKeys. A nil *Keys enforces nothing, as Core Tools does locally.
//
// Levels follow the Azure host: an anonymous route is open; a function-level
// route opens to a host key (functionKeys), a key of that function, or the
// master key; a system-level route to a system key or the master key; admin
// routes, /admin/... and "user" routes (devhost cannot check App Service
// Authentication identities) to the master key only.
type Keys struct {
	master    *digest
	host      []digest
	system    []digest
	functions map[string][]digest // lower-case function name -> its own keys
}

// Only digests are kept: comparing fixed-size digests in constant time hides
// both the keys' contents and their lengths from the timing of an answer.
type digest [sha256.Size]byte

func digestOf(s string) digest { return sha256.Sum256([]byte(s)) }

// LoadKeys reads keys from path, which is either one JSON file or a
// directory laid out as the host's file secret storage (host.json plus one
// <function>.json per function with its own keys).
//
// The file has the shape of the host's secrets file, host.json. Either the
// short form
//
//	{"masterKey": "M", "functionKeys": {"default": "H"}, "systemKeys": {"x": "S"},
//	 "functions": {"Products": {"default": "P"}}}
//
// or the host's own, where a key is {"name": "...", "value": "...", "encrypted": false}
// and masterKey is one such object while functionKeys and systemKeys are arrays of them.
// A function's file in a directory is {"keys": [...]} (or {"keys": {"name": "value"}}).
// Encrypted keys are refused: devhost cannot decrypt them.
func LoadKeys(path string) (*Keys, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	k := &Keys{functions: map[string][]digest{}}
	if !st.IsDir() {
		if err := k.readHostFile(path); err != nil {
			return nil, err
		}
		return k, k.check(path)
	}
	hostFile := filepath.Join(path, "host.json")
	if err := k.readHostFile(hostFile); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		// The host keeps dated copies (host.json.snapshot...) beside the live files.
		if e.IsDir() || !strings.HasSuffix(name, ".json") || strings.EqualFold(name, "host.json") || strings.Contains(name, "snapshot") {
			continue
		}
		file := filepath.Join(path, name)
		var raw struct {
			Keys json.RawMessage `json:"keys"`
		}
		if err := readKeysJSON(file, &raw); err != nil {
			return nil, err
		}
		fn := strings.TrimSuffix(name, ".json")
		ks, err := keyList(raw.Keys)
		if err != nil {
			return nil, fmt.Errorf("%s: keys: %w", file, err)
		}
		k.functions[lower(fn)] = append(k.functions[lower(fn)], ks...)
	}
	return k, k.check(path)
}

func readKeysJSON(file string, v any) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := decodeJSON(data, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

func (k *Keys) readHostFile(file string) error {
	var raw struct {
		MasterKey    json.RawMessage            `json:"masterKey"`
		FunctionKey  json.RawMessage            `json:"functionKey"` // the host's first format
		FunctionKeys json.RawMessage            `json:"functionKeys"`
		SystemKeys   json.RawMessage            `json:"systemKeys"`
		Functions    map[string]json.RawMessage `json:"functions"`
	}
	if err := readKeysJSON(file, &raw); err != nil {
		return err
	}
	if len(raw.MasterKey) > 0 && string(raw.MasterKey) != "null" {
		v, err := keyValue(raw.MasterKey)
		if err != nil {
			return fmt.Errorf("%s: masterKey: %w", file, err)
		}
		d := digestOf(v)
		k.master = &d
	}
	if len(raw.FunctionKey) > 0 && string(raw.FunctionKey) != "null" {
		v, err := keyValue(raw.FunctionKey)
		if err != nil {
			return fmt.Errorf("%s: functionKey: %w", file, err)
		}
		k.host = append(k.host, digestOf(v))
	}
	hostKeys, err := keyList(raw.FunctionKeys)
	if err != nil {
		return fmt.Errorf("%s: functionKeys: %w", file, err)
	}
	k.host = append(k.host, hostKeys...)
	if k.system, err = keyList(raw.SystemKeys); err != nil {
		return fmt.Errorf("%s: systemKeys: %w", file, err)
	}
	names := make([]string, 0, len(raw.Functions))
	for n := range raw.Functions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ks, err := keyList(raw.Functions[n])
		if err != nil {
			return fmt.Errorf("%s: functions.%s: %w", file, n, err)
		}
		k.functions[lower(n)] = append(k.functions[lower(n)], ks...)
	}
	return nil
}

// check refuses a key set that opens nothing: that is a mistake, not a
// configuration, and would silently close every route.
func (k *Keys) check(path string) error {
	n := len(k.host) + len(k.system)
	for _, ks := range k.functions {
		n += len(ks)
	}
	if k.master == nil && n == 0 {
		return fmt.Errorf("%s: no keys: want at least masterKey or functionKeys", path)
	}
	return nil
}

// keyValue reads one key: a string, or the host's {"name","value","encrypted"}.
func keyValue(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return "", errors.New("empty key")
		}
		return s, nil
	}
	var obj struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		Encrypted bool   `json:"encrypted"`
	}
	if err := json.Unmarshal(raw, &obj); err != nil {
		return "", errors.New(`want a string or {"name": "...", "value": "..."}`)
	}
	if obj.Encrypted {
		return "", errors.New("encrypted keys cannot be read by devhost; write the plain value")
	}
	if obj.Value == "" {
		return "", errors.New("empty key")
	}
	return obj.Value, nil
}

// keyList reads a set of named keys: {"name": "value", ...} or the host's
// [{"name","value","encrypted"}, ...]. Absent or null is an empty set.
func keyList(raw json.RawMessage) ([]digest, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var out []digest
	var byName map[string]json.RawMessage
	if json.Unmarshal(raw, &byName) == nil {
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v, err := keyValue(byName[n])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			out = append(out, digestOf(v))
		}
		return out, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, errors.New(`want {"name": "value"} or [{"name": "...", "value": "..."}]`)
	}
	for i, x := range list {
		v, err := keyValue(x)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		out = append(out, digestOf(v))
	}
	return out, nil
}

// requestKey returns the key a request carries: the x-functions-key header,
// else the code query parameter.
func requestKey(r *http.Request) string {
	if v := r.Header.Get(keyHeader); v != "" {
		return v
	}
	return r.URL.Query().Get(keyQuery)
}

// anyMatch compares d with every candidate, without stopping at a match, so
// the time taken does not tell which key (or how many) matched.
func anyMatch(d digest, candidates []digest) bool {
	found := 0
	for i := range candidates {
		found |= subtle.ConstantTimeCompare(d[:], candidates[i][:])
	}
	return found == 1
}

// allows reports whether r's key opens a route of the given level belonging
// to function fn ("" for the admin API).
func (k *Keys) allows(r *http.Request, fn, level string) bool {
	if level == levelAnonymous {
		return true
	}
	key := requestKey(r)
	if key == "" {
		return false
	}
	d := digestOf(key)
	isMaster := k.master != nil && subtle.ConstantTimeCompare(d[:], k.master[:]) == 1
	switch level {
	case levelFunction:
		// Evaluate every set: no short cut that times which set matched.
		host := anyMatch(d, k.host)
		own := anyMatch(d, k.functions[lower(fn)])
		return isMaster || host || own
	case levelSystem:
		return anyMatch(d, k.system) || isMaster
	default: // admin, user and anything stricter
		return isMaster
	}
}

// summary describes the key set for the start-up log, without any key.
func (k *Keys) summary() string {
	n := 0
	for _, ks := range k.functions {
		n += len(ks)
	}
	master := "no master key"
	if k.master != nil {
		master = "master key set"
	}
	return fmt.Sprintf("%s, %d host key(s), %d system key(s), %d function key(s) for %d function(s)",
		master, len(k.host), len(k.system), n, len(k.functions))
}

// unauthorized answers 401 as the host does: no body, nothing about keys.
func unauthorized(w http.ResponseWriter) {
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusUnauthorized)
}

// isLoopback reports whether a listen address ("host:port") is reachable
// only from this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
