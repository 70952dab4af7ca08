package syncer

import (
	"strings"
	"testing"

	"dualsync/internal/domain"
	"dualsync/internal/table"
)

func TestRetryMessageValid(t *testing.T) {
	p := domain.EntityProduct
	for _, c := range []struct {
		name string
		m    Message
		want string // "" = valid
	}{
		{"a retried item of a run", Message{Entity: p, ID: 3, Run: "r", Retry: 2}, ""},
		{"a retry without a run", Message{Entity: p, ID: 3, Retry: 1}, "retry round"},
		{"a retried batch", Message{Entity: p, IDs: []int64{1, 2}, Retry: 1}, "retry round"},
		{"a negative round", Message{Entity: p, ID: 3, Run: "r", Retry: -1}, "retry round"},
	} {
		err := validMessage(c.m)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error about %q", c.name, err, c.want)
		}
	}
}

// A failed outcome's reason counts the attempts of its own round.
func TestGiveUpReason(t *testing.T) {
	a := func(retry int, reason string) table.Attempt { return table.Attempt{Retry: retry, Reason: reason} }
	for _, c := range []struct {
		name  string
		n     int
		retry int
		hist  []table.Attempt
		want  string
	}{
		{"the run's own", 2, 0, []table.Attempt{a(0, "x"), a(0, "y")}, "gave up after 2 attempts: y"},
		{"more than the history keeps", 25, 0, []table.Attempt{a(0, "x"), a(0, "z")}, "gave up after 25 attempts: z"},
		{"one attempt", 1, 0, []table.Attempt{a(0, "x")}, "gave up after 1 attempt: x"},
		{"a retry round", 4, 1, []table.Attempt{a(0, "x"), a(0, "x"), a(1, "y"), a(1, "z")}, "gave up after 2 attempts in retry round 1: z"},
	} {
		if got := giveUpReason(c.n, c.hist[len(c.hist)-1].Reason, c.retry, c.hist); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
