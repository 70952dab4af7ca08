package testenv

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
)

// Logs captures JSON log lines (a handler's stderr, or a slog.Logger made
// by Logger) so that tests can find the operator events (internal/event)
// among them.
type Logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write takes log output; safe for concurrent use.
func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Logger returns a JSON logger at debug level that writes to l.
func (l *Logs) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Events returns the records whose "event" attribute is name, in order.
// Lines that are not JSON objects are skipped.
func (l *Logs) Events(name string) []map[string]any {
	l.mu.Lock()
	text := l.buf.String()
	l.mu.Unlock()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Bytes()
		if i := bytes.IndexByte(line, '{'); i > 0 {
			line = line[i:] // a prefix (devhost's "[handler] ") before the record
		}
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && rec["event"] == name {
			out = append(out, rec)
		}
	}
	return out
}

// String returns everything captured.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
