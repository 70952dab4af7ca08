package mssql

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"dualsync/internal/domain"
)

// Entra sign-in (fedauth=... in the URL). go-mssqldb's azuread connector
// builds a new azidentity credential for every connection it opens
// (provideActiveDirectoryToken in azuread/configuration.go, v1.11.2), so no
// token is ever reused, and it asks for the token in the middle of the
// login, on a socket whose deadline (DB_CONNECT_TIMEOUT) is already running:
// a workstation's DefaultAzureCredential probes managed identity, then runs
// the az CLI, which takes longer than the 2 s default. Instead, each DB
// holds one credential and one cached token for all its connections, given
// to go-mssqldb through its security-token connector
// (mssql.NewConnectorWithAccessTokenProvider), and boundedConnector gets the
// token before the connect's own deadline starts, within a budget of its own
// (Options.TokenTimeout, default DefaultTokenTimeout).

// DefaultTokenTimeout bounds getting an Entra token when no token is cached:
// long enough for DefaultAzureCredential on a workstation (managed identity
// probe, then the az CLI, which azidentity itself allows 10 s), short enough
// that a command with nothing to sign in with fails rather than hangs. A
// caller's own deadline (an API request's) bounds it too.
const DefaultTokenTimeout = 30 * time.Second

// tokenRefreshMargin: a cached token is replaced this long before it expires,
// so a login never presents a token that expires during the handshake.
const tokenRefreshMargin = 5 * time.Minute

// tokenMinLife: a cached token past its refresh margin still signs a login in
// while it has this much life left, while it is refreshed in the background
// and when that refresh fails (the identity endpoint briefly down); a token
// is checked at login only, so the session outlives it.
const tokenMinLife = time.Minute

// tokenRetryAfter: after a failed background refresh, the next one waits
// this long, so an endpoint that is down is not asked on every connect.
const tokenRetryAfter = 10 * time.Second

// tokenSource is the one credential of a DB and the token it last got.
type tokenSource struct {
	cred   azcore.TokenCredential
	scope  string
	budget time.Duration
	now    func() time.Time

	sem     chan struct{} // one acquisition at a time; the others wait and reuse it
	mu      sync.Mutex
	tok     azcore.AccessToken
	retryAt time.Time // no refresh before this, while tok is usable (after a failure)
}

func newTokenSource(cred azcore.TokenCredential, scope string, budget time.Duration) *tokenSource {
	if budget <= 0 {
		budget = DefaultTokenTimeout
	}
	return &tokenSource{cred: cred, scope: scope, budget: budget, now: time.Now, sem: make(chan struct{}, 1)}
}

// cached returns the token if it has at least left of its life to go.
func (s *tokenSource) cached(left time.Duration) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok.Token != "" && s.now().Add(left).Before(s.tok.ExpiresOn) {
		return s.tok.Token, true
	}
	return "", false
}

// Token returns the cached token, or gets one within the budget (and ctx).
// Past the refresh margin, a token that is still usable (tokenMinLife) signs
// the login in at once while one refresh runs in the background: a refresh
// that fails (the identity endpoint briefly down) or is slow then costs no
// connection anything, and is tried again after tokenRetryAfter.
func (s *tokenSource) Token(ctx context.Context) (string, error) {
	if t, ok := s.cached(tokenRefreshMargin); ok {
		return t, nil
	}
	if t, ok := s.cached(tokenMinLife); ok {
		s.refreshSoon()
		return t, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", &tokenError{err: ctx.Err()}
	}
	defer func() { <-s.sem }()
	if t, ok := s.cached(tokenRefreshMargin); ok { // another connection got it meanwhile
		return t, nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.budget)
	defer cancel()
	tk, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.scope}})
	if err != nil {
		return "", &tokenError{err: err}
	}
	s.mu.Lock()
	s.tok, s.retryAt = tk, time.Time{}
	s.mu.Unlock()
	return tk.Token, nil
}

// refreshSoon starts one background refresh, unless an acquisition is under
// way or one failed less than tokenRetryAfter ago. It ends within the budget.
func (s *tokenSource) refreshSoon() {
	s.mu.Lock()
	wait := s.now().Before(s.retryAt)
	s.mu.Unlock()
	if wait {
		return
	}
	select {
	case s.sem <- struct{}{}:
	default:
		return
	}
	go func() {
		defer func() { <-s.sem }()
		if _, ok := s.cached(tokenRefreshMargin); ok {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.budget)
		defer cancel()
		tk, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{s.scope}})
		s.mu.Lock()
		defer s.mu.Unlock()
		if err != nil {
			s.retryAt = s.now().Add(tokenRetryAfter)
			return
		}
		s.tok, s.retryAt = tk, time.Time{}
	}()
}

// tokenError is a failure to get an Entra token: the login was never sent,
// so nothing changed, and the database is as unusable as an unreachable one.
type tokenError struct{ err error }

func (e *tokenError) Error() string { return "sqlserver: no Entra token: " + e.err.Error() }
func (e *tokenError) Unwrap() error { return e.err }

// entraScope is the token scope of the Azure SQL endpoint host belongs to:
// https://database.windows.net/.default, or the sovereign clouds' own
// (https://learn.microsoft.com/azure/azure-sql/database/authentication-aad-configure).
func entraScope(host string) string {
	h := strings.ToLower(host)
	for _, suffix := range []string{"database.usgovcloudapi.net", "database.chinacloudapi.cn"} {
		if strings.HasSuffix(h, "."+suffix) {
			return "https://" + suffix + "/.default"
		}
	}
	return "https://database.windows.net/.default"
}

// Entra workflows (fedauth= values, as go-mssqldb's azuread names them) the
// adapter signs in with.
const (
	fedDefault          = "ActiveDirectoryDefault"
	fedManagedIdentity  = "ActiveDirectoryManagedIdentity"
	fedMSI              = "ActiveDirectoryMSI"
	fedAzCli            = "ActiveDirectoryAzCli"
	fedAzureDevCli      = "ActiveDirectoryAzureDeveloperCli"
	fedEnvironment      = "ActiveDirectoryEnvironment"
	fedWorkloadIdentity = "ActiveDirectoryWorkloadIdentity"
	fedServicePrincipal = "ActiveDirectoryServicePrincipal"
	fedApplication      = "ActiveDirectoryApplication"
)

// entraCredential returns the credential the URL's fedauth names, or nil
// without fedauth (a SQL login). It contacts nothing. Errors never echo the
// URL.
func entraCredential(u *url.URL) (azcore.TokenCredential, error) {
	q := u.Query()
	param := func(key string) string {
		for k, v := range q {
			if strings.EqualFold(strings.TrimSpace(k), key) && len(v) > 0 {
				return v[0]
			}
		}
		return ""
	}
	flow := param("fedauth")
	if flow == "" {
		return nil, nil
	}
	user := param("user id")
	if user == "" && u.User != nil {
		user = u.User.Username()
	}
	secret := param("password")
	if secret == "" && u.User != nil {
		secret, _ = u.User.Password()
	}
	client, tenant, _ := strings.Cut(user, "@")
	var (
		cred azcore.TokenCredential
		err  error
	)
	switch {
	case strings.EqualFold(flow, fedDefault):
		cred, err = azidentity.NewDefaultAzureCredential(nil)
	case strings.EqualFold(flow, fedManagedIdentity), strings.EqualFold(flow, fedMSI):
		// "user id" names a user-assigned identity by client id (what the
		// Bicep writes), "resource id" by resource id.
		var o azidentity.ManagedIdentityCredentialOptions
		switch res := param("resource id"); {
		case res != "":
			o.ID = azidentity.ResourceID(res)
		case client != "":
			o.ID = azidentity.ClientID(client)
		}
		cred, err = azidentity.NewManagedIdentityCredential(&o)
	case strings.EqualFold(flow, fedAzCli):
		cred, err = azidentity.NewAzureCLICredential(nil)
	case strings.EqualFold(flow, fedAzureDevCli):
		cred, err = azidentity.NewAzureDeveloperCLICredential(nil)
	case strings.EqualFold(flow, fedEnvironment):
		cred, err = azidentity.NewEnvironmentCredential(nil)
	case strings.EqualFold(flow, fedWorkloadIdentity):
		cred, err = azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{ClientID: client, TenantID: tenant})
	case strings.EqualFold(flow, fedServicePrincipal), strings.EqualFold(flow, fedApplication):
		// The token is got before the login, so the server cannot name the
		// tenant: the URL must.
		if client == "" || tenant == "" || secret == "" {
			return nil, domain.Errorf(domain.KindInternal,
				"sqlserver: fedauth=%s needs user id=<client id>@<tenant id> and the client secret as password", flow)
		}
		cred, err = azidentity.NewClientSecretCredential(tenant, client, secret, nil)
	default:
		return nil, domain.Errorf(domain.KindInternal,
			"sqlserver: fedauth=%q is not supported: use %s (Azure), %s (a workstation), %s, %s, %s, %s or %s",
			safeParam(flow), fedManagedIdentity, fedDefault, fedAzCli, fedAzureDevCli, fedEnvironment, fedWorkloadIdentity, fedServicePrincipal)
	}
	if err != nil {
		// azidentity's constructor errors name options, never secrets.
		return nil, domain.Wrap(domain.KindInternal, errors.New(err.Error()), fmt.Sprintf("sqlserver: fedauth=%s: cannot set up the credential", flow))
	}
	return cred, nil
}

// safeParam keeps a garbled value out of messages.
func safeParam(s string) string {
	if len(s) > 40 || strings.ContainsAny(s, "@:/?#&=") {
		return "(unrecognised)"
	}
	return s
}
