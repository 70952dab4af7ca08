package table

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// azureLimits is a pipeline policy that checks every entity and
// transaction the adapter sends against Azure's limits (limits.go), on the
// wire: Azurite accepts what Azure rejects, so without it a test would pass
// here and fail in Azure. Violations fail the test at its end.
type azureLimits struct {
	mu         sync.Mutex
	violations []string
	entities   int // entities checked
	txns       int // transactions checked
	largest    int // largest entity seen, bytes by Azure's arithmetic
}

func (a *azureLimits) fail(format string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.violations = append(a.violations, fmt.Sprintf(format, args...))
}

var urlKeys = regexp.MustCompile(`\(PartitionKey='((?:[^']|'')*)',RowKey='((?:[^']|'')*)'\)`)

func (a *azureLimits) Do(req *policy.Request) (*http.Response, error) {
	raw := req.Raw()
	if raw.Body != nil && raw.Method != http.MethodGet && raw.Method != http.MethodDelete {
		body, err := io.ReadAll(req.Body())
		if err != nil {
			return nil, err
		}
		if err := req.RewindBody(); err != nil {
			return nil, err
		}
		switch {
		case strings.HasSuffix(raw.URL.Path, "/$batch"):
			a.checkBatch(raw.Header.Get("Content-Type"), body)
		case strings.HasSuffix(raw.URL.Path, "/Tables"): // table creation
		case len(body) > 0:
			a.checkEntity(raw.URL, body)
		}
	}
	return req.Next()
}

// checkEntity checks one entity body; it returns its PartitionKey and RowKey.
func (a *azureLimits) checkEntity(u *url.URL, body []byte) (string, string) {
	pk, rk, props, err := wireEntity(body)
	if err != nil {
		a.fail("unreadable entity %s: %v", u.Path, err)
		return "", ""
	}
	if m := urlKeys.FindStringSubmatch(u.Path); m != nil && pk == "" && rk == "" {
		pk, rk = strings.ReplaceAll(m[1], "''", "'"), strings.ReplaceAll(m[2], "''", "'")
	}
	size, err := entitySize(pk, rk, props)
	a.mu.Lock()
	a.entities++
	a.largest = max(a.largest, size)
	a.mu.Unlock()
	if err != nil {
		a.fail("%v", err)
	}
	return pk, rk
}

// checkBatch checks an entity group transaction as sent: its payload, its
// operations, one partition, each entity once, and each entity.
func (a *azureLimits) checkBatch(contentType string, body []byte) {
	a.mu.Lock()
	a.txns++
	a.mu.Unlock()
	if len(body) > maxTxnBytes {
		a.fail("a transaction of %d bytes, at most %d", len(body), maxTxnBytes)
	}
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		a.fail("transaction content type %q: %v", contentType, err)
		return
	}
	outer := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	changeset, err := outer.NextPart()
	if err != nil {
		a.fail("transaction without a changeset: %v", err)
		return
	}
	_, cparams, err := mime.ParseMediaType(changeset.Header.Get("Content-Type"))
	if err != nil {
		a.fail("changeset content type: %v", err)
		return
	}
	inner := multipart.NewReader(changeset, cparams["boundary"])
	ops, pk0 := 0, ""
	seen := map[string]bool{}
	for {
		part, err := inner.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			a.fail("changeset part: %v", err)
			return
		}
		op, err := http.ReadRequest(bufio.NewReader(part))
		if err != nil {
			a.fail("changeset operation: %v", err)
			return
		}
		b, _ := io.ReadAll(op.Body)
		ops++
		if len(b) == 0 { // a delete
			continue
		}
		pk, rk := a.checkEntity(op.URL, b)
		if ops == 1 {
			pk0 = pk
		}
		if pk != pk0 {
			a.fail("a transaction spans partitions %s and %s", pk0, pk)
		}
		if seen[pk+"/"+rk] {
			a.fail("a transaction names %s/%s twice", pk, rk)
		}
		seen[pk+"/"+rk] = true
	}
	if ops == 0 || ops > maxTxnOps {
		a.fail("a transaction of %d operations, 1 to %d", ops, maxTxnOps)
	}
}

// withLimits adds the check to opts (nil: new options) and fails t at its
// end on any violation.
func withLimits(t *testing.T, opts *aztables.ClientOptions) (*aztables.ClientOptions, *azureLimits) {
	t.Helper()
	a := &azureLimits{}
	o := aztables.ClientOptions{}
	if opts != nil {
		o = *opts
	}
	o.PerCallPolicies = append(append([]policy.Policy(nil), o.PerCallPolicies...), a)
	t.Cleanup(func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, v := range a.violations {
			t.Errorf("Azure would reject this request: %s", v)
		}
	})
	return &o, a
}

// checkStored reads back every entity of s's results and runs tables and
// checks it whole (a merge can grow an entity past what one request sent).
func checkStored(t *testing.T, c context.Context, s *Store) (entities, largest int) {
	t.Helper()
	for _, cl := range []*aztables.Client{s.runs, s.results} {
		pager := cl.NewListEntitiesPager(nil)
		for pager.More() {
			page, err := pager.NextPage(c)
			if err != nil {
				t.Fatal(err)
			}
			for _, raw := range page.Entities {
				pk, rk, props, err := wireEntity(raw)
				if err != nil {
					t.Fatalf("stored entity: %v", err)
				}
				size, err := entitySize(pk, rk, props)
				if err != nil {
					t.Errorf("stored entity: %v", err)
				}
				entities++
				largest = max(largest, size)
			}
		}
	}
	return entities, largest
}
