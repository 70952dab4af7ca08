package table

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/testenv"
)

// Azure's size arithmetic and limits, exactly at and one past each limit.
func TestEntitySize(t *testing.T) {
	props := func(kv ...any) map[string]any {
		m := map[string]any{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	many := map[string]any{}
	for i := range maxProperties {
		many[fmt.Sprintf("p%d", i)] = true
	}
	tooMany := map[string]any{"extra": true}
	for k, v := range many {
		tooMany[k] = v
	}
	// A string of n UTF-16 code units, half of them in surrogate pairs.
	pairs := strings.Repeat("😀", stringChunk/2)
	for _, tc := range []struct {
		name   string
		pk, rk string
		props  map[string]any
		size   int // -1: refused
	}{
		// 4 + 2×(1+1) + (8 + 2×1 + 4 + 2×2)
		{"one short string", "p", "r", props("a", "xy"), 4 + 4 + 18},
		{"every type", "p", "r", props("s", "", "b", true, "i", int32(1), "l", aztables.EDMInt64(1), "t", aztables.EDMDateTime(time.Now()),
			"d", 1.5, "g", aztables.EDMGUID("x"), "x", aztables.EDMBinary{1, 2, 3}), 8 + (10 + 4) + (10 + 1) + (10 + 4) + (10 + 8) + (10 + 8) + (10 + 8) + (10 + 16) + (10 + 7)},
		{"a string of 64 KiB", "p", "r", props("a", strings.Repeat("a", stringChunk)), 8 + 10 + 4 + maxStringBytes},
		{"a string of 64 KiB in surrogate pairs", "p", "r", props("a", pairs), 8 + 10 + 4 + maxStringBytes},
		{"a string past 64 KiB", "p", "r", props("a", strings.Repeat("a", stringChunk+1)), -1},
		{"surrogate pairs past 64 KiB", "p", "r", props("a", pairs+"a"), -1},
		{"binary of 64 KiB", "p", "r", props("a", aztables.EDMBinary(make([]byte, maxBinaryBytes))), 8 + 10 + 4 + maxBinaryBytes},
		{"binary past 64 KiB", "p", "r", props("a", aztables.EDMBinary(make([]byte, maxBinaryBytes+1))), -1},
		{"252 properties", "p", "r", many, -2},
		{"253 properties", "p", "r", tooMany, -1},
		{"key of 1 KiB", strings.Repeat("k", 512), "r", nil, 4 + 2*513},
		{"key past 1 KiB", strings.Repeat("é", 513), "r", nil, -1},
		{"key with a slash", "a/b", "r", nil, -1},
		{"key with a hash", "p", "a#b", nil, -1},
		{"key with a question mark", "p", "a?b", nil, -1},
		{"key with a backslash", `a\b`, "r", nil, -1},
		{"key with a control character", "p", "a\u0085b", nil, -1},
		{"property name of 255", "p", "r", props(strings.Repeat("n", 255), true), 8 + 8 + 510 + 1},
		{"property name of 256", "p", "r", props(strings.Repeat("n", 256), true), -1},
		{"property name not an identifier", "p", "r", props("a-b", true), -1},
		{"an entity of 1 MiB", "p", "r", sized(maxEntityBytes), maxEntityBytes},
		{"an entity past 1 MiB", "p", "r", sized(maxEntityBytes + 2), -1},
	} {
		size, err := entitySize(tc.pk, tc.rk, tc.props)
		switch {
		case tc.size == -1 && err == nil:
			t.Errorf("%s: accepted (%d bytes), Azure refuses it", tc.name, size)
		case tc.size == -1:
			if !domain.IsKind(err, domain.KindInternal) || !strings.Contains(err.Error(), "Azure Table Storage limit") {
				t.Errorf("%s: %v, want an Internal limit error", tc.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v, Azure accepts it", tc.name, err)
		case tc.size >= 0 && size != tc.size:
			t.Errorf("%s: %d bytes, want %d", tc.name, size, tc.size)
		}
	}
}

// sized is the properties of an entity ("p"/"r") of exactly n bytes by
// Azure's arithmetic (n even): full 64 KiB strings, then the rest.
func sized(n int) map[string]any {
	m := map[string]any{}
	left := n - (4 + 2*2)
	const over = 8 + 2*3 + 4 // a property "sNN": its overhead
	for i := 0; left > 0; i++ {
		chars := min(stringChunk, (left-over)/2)
		m[fmt.Sprintf("s%02d", i)] = strings.Repeat("a", chars)
		left -= over + 2*chars
	}
	return m
}

// Long strings are split at 64 KiB (UTF-16) and read back whole, never
// cut inside a character; a cleared chunk ends the value.
func TestSplitLong(t *testing.T) {
	for _, s := range []string{
		"",
		"short",
		strings.Repeat("a", stringChunk),
		strings.Repeat("a", stringChunk+1),
		strings.Repeat("a", stringChunk-1) + "😀" + "b", // the pair straddles the cut
		strings.Repeat(`\u003c`, 50_000),
		strings.Repeat("😀é", 70_000),
	} {
		props := map[string]any{"detail": s, "other": int32(1)}
		splitLong(props)
		if _, err := entitySize("p", "r", props); err != nil {
			t.Errorf("%d units: %v", units(s), err)
		}
		wantParts := max(1, (units(s)+stringChunk-1)/stringChunk)
		if got := len(props) - 1; got != wantParts {
			t.Errorf("%d units in %d properties, want %d", units(s), got, wantParts)
		}
		for name, v := range props {
			if str, ok := v.(string); ok && strings.ContainsRune(str, '\uFFFD') {
				t.Errorf("%s: a character was cut", name)
			}
		}
		joinLong(props)
		if props["detail"] != s || len(props) != 2 {
			t.Errorf("%d units: read back %d units in %d properties", units(s), units(props["detail"].(string)), len(props))
		}
	}
	props := map[string]any{"reason": "new", "reason_1": "", "reason_2": "stale"}
	joinLong(props)
	if props["reason"] != "new" {
		t.Errorf("a cleared chunk: %q, want %q", props["reason"], "new")
	}
}

// The wire check fails where Azure would (here Azurite accepts what Azure
// rejects), and passes what Azure takes.
func TestAzureLimitsOnTheWire(t *testing.T) {
	s := sharedStore(t)
	check := &azureLimits{}
	svc, err := aztables.NewServiceClientFromConnectionString(testenv.Storage(t),
		&aztables.ClientOptions{ClientOptions: azcore.ClientOptions{PerCallPolicies: []policy.Policy{check}}})
	if err != nil {
		t.Fatal(err)
	}
	raw := svc.NewClient(s.names[1])
	c := ctx(t)
	send := func(rk string, props map[string]any) {
		t.Helper()
		b, err := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: "limits", RowKey: rk}, Properties: props})
		if err != nil {
			t.Fatal(err)
		}
		_, err = raw.AddEntity(c, b, nil)
		t.Logf("Azurite's answer to %s: %v", rk, err != nil)
	}
	send("ok", map[string]any{"detail": strings.Repeat("a", stringChunk)})
	if len(check.violations) != 0 || check.entities != 1 {
		t.Fatalf("a 64 KiB string: violations %v", check.violations)
	}
	for i, tc := range []struct {
		rk    string
		props map[string]any
		want  string
	}{
		{"long", map[string]any{"detail": strings.Repeat("<", stringChunk+1)}, "string property detail"},
		{"big", sized(maxEntityBytes + 2), "at most 1048576"},
		{"many", func() map[string]any {
			m := map[string]any{}
			for i := range maxProperties + 1 {
				m[fmt.Sprintf("p%d", i)] = int32(i)
			}
			return m
		}(), "253 properties"},
	} {
		send(tc.rk, tc.props)
		if len(check.violations) != i+1 || !strings.Contains(check.violations[i], tc.want) {
			t.Fatalf("%s: violations %v, want one more with %q", tc.rk, check.violations, tc.want)
		}
	}
	// A transaction of 101 operations (Azurite takes it too).
	var acts []aztables.TransactionAction
	for i := range 101 {
		b, _ := json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: "limits", RowKey: fmt.Sprintf("t%03d", i)}})
		acts = append(acts, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: b})
	}
	_, _ = raw.SubmitTransaction(c, acts, nil)
	if n := len(check.violations); n != 4 || !strings.Contains(check.violations[3], "101 operations") {
		t.Fatalf("a transaction of 101 operations: violations %v", check.violations)
	}
	if err := checkTxn(acts); err == nil {
		t.Error("checkTxn accepts 101 operations")
	}
	if err := checkTxn(acts[:100]); err != nil {
		t.Errorf("checkTxn refuses 100 operations: %v", err)
	}
}

// productVersion is a product row as a conflict's detail shows it, at the
// largest the API accepts: a 255-unit name and a 4,000-unit description of
// characters that JSON escapes to six (\u003c).
func productVersion(id int64) map[string]any {
	ts := "2026-12-03T10:00:00.000Z"
	return map[string]any{"id": id, "name": strings.Repeat("<", 255), "description": strings.Repeat("<", 4000),
		"price": "99999999.99", "createdAt": ts, "updatedAt": ts, "deletedAt": ts,
		"version": map[string]int64{"primary": 1 << 40, "fallback": 1 << 40}, "nameAt": ts, "descriptionAt": ts, "priceAt": ts}
}

func userVersion(id int64) map[string]any {
	ts := "2026-12-03T10:00:00.000Z"
	return map[string]any{"id": id, "name": strings.Repeat("&", 100), "email": strings.Repeat("&", 242) + "@example.com",
		"createdAt": ts, "updatedAt": ts, "deletedAt": ts,
		"version": map[string]int64{"primary": 1 << 40, "fallback": 1 << 40}, "nameAt": ts, "emailAt": ts}
}

// worstDetail is the largest conflict detail of an entity type: three
// versions of the row (both sides and the merge), and for users the two
// other users holding its email.
func worstDetail(t *testing.T, e domain.Entity, id int64) string {
	t.Helper()
	d := map[string]any{"primary": productVersion(id), "fallback": productVersion(id), "merged": productVersion(id)}
	if e == domain.EntityUser {
		d = map[string]any{"primary": userVersion(id), "fallback": userVersion(id), "merged": userVersion(id),
			"emailHeldBy": map[string]any{"primary": userVersion(id + 1), "fallback": userVersion(id + 2)}}
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The largest entities the app writes, all checked on the wire (newStore)
// and read back whole: the largest conflict detail of products and users in
// a run's results and in real time; a full bucket of 64 such conflicts and
// a full real-time batch of 100 (details spread over several transactions
// of at most 100 operations and 4 MiB); the largest plan page; the largest
// cached run output and input. Then every stored entity is checked whole.
func TestWorstCaseEntities(t *testing.T) {
	s := sharedStore(t)
	c := ctx(t)
	day := randomDay(19)
	reason := "conflict: " + strings.Repeat("both sides changed; ", 20)
	for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		detail := worstDetail(t, e, 1)
		if e == domain.EntityProduct && units(detail) <= stringChunk {
			t.Fatalf("%s detail of %d units fits one property: not the worst case", e, units(detail))
		}
		run := createRun(t, s)
		run.Entity = e
		r := Result{Entity: e, ID: 1, Status: StatusConflict, Reason: reason, Detail: detail, At: day}
		if ok, err := s.RecordRunResult(c, run.ID, r); err != nil || !ok {
			t.Fatalf("%s run result: %v, %v", e, ok, err)
		}
		got, _, err := s.Results(c, run.ID, StatusConflict, 10, "")
		if err != nil || len(got) != 1 || got[0].Detail != detail || got[0].Reason != reason {
			t.Fatalf("%s run result read back: %v, %d results", e, err, len(got))
		}
		if err := s.RecordRealtime(c, Result{Entity: e, ID: 1, Status: StatusConflict, Reason: reason, Detail: detail, Ver: domain.Vector{P: 1, F: 1}, At: day}); err != nil {
			t.Fatal(err)
		}
		if rr, ok := listedAs(t, s, day, StatusConflict, e, 1); !ok || rr.Detail != detail || rr.Reason != reason {
			t.Fatalf("%s real-time conflict read back: listed %v, detail of %d units", e, ok, units(rr.Detail))
		}
	}

	// A full bucket (ids 64..127) of the largest conflicts in one call, and
	// a full batch of 100 (ids 1000..1099, three buckets).
	for _, ids := range [][2]int64{{64, 128}, {1000, 1100}} {
		var rs []Result
		for id := ids[0]; id < ids[1]; id++ {
			rs = append(rs, Result{Entity: domain.EntityProduct, ID: id, Status: StatusConflict, Reason: reason,
				Detail: worstDetail(t, domain.EntityProduct, id), Ver: domain.Vector{P: 2, F: 2}, At: day})
		}
		if err := s.RecordRealtime(c, rs...); err != nil {
			t.Fatal(err)
		}
		listed := map[int64]Result{}
		for token := ""; ; {
			page, next, err := s.Results(c, RealtimePartition(day), StatusConflict, 1000, token)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if r.Entity == domain.EntityProduct {
					listed[r.ID] = r
				}
			}
			if token = next; next == "" {
				break
			}
		}
		for _, r := range rs {
			if got, ok := listed[r.ID]; !ok || got.Detail != r.Detail || got.Reason != reason {
				t.Fatalf("item %d of a full batch: listed %v, detail of %d units, want %d", r.ID, ok, units(got.Detail), units(r.Detail))
			}
		}
	}

	// The largest plan page: ids 4 bytes apart in the encoding.
	run := createRun(t, s)
	page := PlanPage{After: 0, Owner: "m1"}
	for i := range int64(maxIDBytes / 4) {
		page.IDs = append(page.IDs, (i+1)<<21)
	}
	page.Count, page.Next = len(page.IDs), page.IDs[len(page.IDs)-1]
	if err := s.PutPlanPage(c, run.ID, page); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.GetPlanPage(c, run.ID, 0)
	if err != nil || !ok || got.Count != page.Count || len(got.IDs) != len(page.IDs) || got.IDs[len(got.IDs)-1] != page.Next {
		t.Fatalf("largest plan page read back: %v, %v, %d ids", err, ok, len(got.IDs))
	}

	// The largest run input and cached output, in ASCII: the most UTF-16
	// per byte, so Azure's bound. (Three-byte characters reach Azurite's
	// 1 MiB of JSON per request first; marshalRun keeps to it too, but
	// Azurite garbles non-ASCII bodies past 64 KB on a single-entity
	// request, so they cannot be read back here.)
	for _, tc := range []struct {
		ch     string
		output int
	}{{"a", maxOutputUnits}} {
		ch := tc.ch
		r := Run{ID: newRunID(), Entity: domain.EntityProduct, Trigger: "http", Status: RunPending, CreatedTime: day, LastUpdatedTime: day,
			Input: strings.Repeat(ch, maxInputUnits), Reason: strings.Repeat(ch, maxReasonUnits+10)}
		if err := s.CreateRun(c, r); err != nil {
			t.Fatalf("run with the largest input: %v", err)
		}
		r.Status, r.Output = RunCompleted, strings.Repeat(ch, tc.output)
		if err := s.UpdateRun(c, r); err != nil {
			t.Fatalf("run with the largest output: %v", err)
		}
		back, err := s.GetRun(c, r.ID)
		if err != nil || back.Output != r.Output || back.Input != r.Input || units(back.Reason) != maxReasonUnits {
			t.Fatalf("run read back: %v; output %d units, input %d, reason %d", err, units(back.Output), units(back.Input), units(back.Reason))
		}
		r.Output += ch // past the bound: not cached, the run still updates
		if err := s.UpdateRun(c, r); err != nil {
			t.Fatal(err)
		}
		r.ID, r.Input = newRunID(), strings.Repeat(ch, maxInputUnits+1)
		if err := s.CreateRun(c, r); !domain.IsKind(err, domain.KindInvalid) {
			t.Fatalf("an input past the bound: %v, want Invalid", err)
		}
		if _, err := s.GetRun(c, r.ID); !domain.IsKind(err, domain.KindNotFound) {
			t.Fatalf("a refused run exists: %v", err)
		}
	}

	n, largest := checkStored(t, c, s)
	t.Logf("%d stored entities within Azure's limits, the largest %d bytes of %d", n, largest, maxEntityBytes)
}
