package mssql

import (
	"context"
	"database/sql/driver"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	mssqldb "github.com/microsoft/go-mssqldb"

	"dualsync/internal/domain"
)

// go-mssqldb has no login timeout: its "connection timeout" wraps the socket
// for the connection's whole life and pushes the deadline forward on every
// read and write (net.go timeoutConn in v1.11.2), so any statement during
// which the server sends nothing for that long (a lock wait, sp_getapplock, a
// throttled COMMIT) would fail with an i/o timeout. And without it the
// pre-login and login reads have no bound at all (they do not watch the
// context). So the connect is bounded here instead, and only the connect:
//
//   - boundedConnector.Connect gives the attempt a context deadline (dial,
//     Entra token, redirects) and a per-attempt record of the sockets it dials;
//   - deadlineDialer sets that same deadline on each socket it dials, which
//     also bounds the pre-login, TLS and login reads;
//   - once the attempt succeeds, the deadline is cleared, so a connection that
//     is up is bounded by the contexts of its statements alone.

// ConnectURL returns rawURL ready for go-mssqldb: "dial timeout" set to
// connectTimeout (whole seconds, rounded up; default DefaultConnectTimeout)
// unless the URL sets it, and no "connection timeout": a URL that sets one
// is refused, because go-mssqldb would apply it to every read of the
// connection's life. It never echoes the URL in an error.
func ConnectURL(rawURL string, connectTimeout time.Duration) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !strings.EqualFold(u.Scheme, "sqlserver") || u.Host == "" {
		return "", domain.Errorf(domain.KindInternal, "sqlserver: invalid database URL: expected sqlserver://user:password@host:port?database=name")
	}
	q := u.Query()
	if hasKey(q, "connection timeout") {
		return "", domain.Errorf(domain.KindInternal,
			`sqlserver: the database URL sets "connection timeout", which go-mssqldb applies to every read and write for the connection's whole life (a slow statement would drop the connection); remove it: DB_CONNECT_TIMEOUT bounds the connect, DB_QUERY_TIMEOUT each statement`)
	}
	if connectTimeout <= 0 {
		connectTimeout = DefaultConnectTimeout
	}
	if !hasKey(q, "dial timeout") {
		q.Set("dial timeout", secondsUp(connectTimeout))
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

func secondsUp(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}

// boundedConnector wraps go-mssqldb's connector (see the comment above).
type boundedConnector struct {
	inner   driver.Connector
	timeout time.Duration
	tokens  *tokenSource // nil without Entra sign-in
}

// attemptKey carries the current attempt's socket record to the dialer.
type attemptKey struct{}

// attempt records the sockets one connect attempt dialed (several with
// MultiSubnetFailover or an Azure SQL redirect) and their deadline.
type attempt struct {
	deadline time.Time
	mu       sync.Mutex
	conns    []net.Conn
}

func (c *boundedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	if c.tokens != nil {
		// The Entra token first, within its own budget: the login then
		// finds it cached, and DB_CONNECT_TIMEOUT bounds the network alone.
		if _, err := c.tokens.Token(ctx); err != nil {
			return nil, err
		}
	}
	deadline := time.Now().Add(c.timeout)
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	a := &attempt{deadline: deadline}
	conn, err := c.inner.Connect(context.WithValue(ctx, attemptKey{}, a))
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, nc := range a.conns {
		// Sockets of abandoned tries are closed; the error is theirs.
		_ = nc.SetDeadline(time.Time{})
	}
	return conn, nil
}

func (c *boundedConnector) Driver() driver.Driver { return c.inner.Driver() }

// deadlineDialer dials TCP like go-mssqldb's default dialer (30 s keep-alive)
// and sets the attempt's deadline on the socket.
type deadlineDialer struct{ nd net.Dialer }

func (d *deadlineDialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := d.nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	if a, ok := ctx.Value(attemptKey{}).(*attempt); ok {
		if err := nc.SetDeadline(a.deadline); err != nil {
			nc.Close()
			return nil, err
		}
		a.mu.Lock()
		a.conns = append(a.conns, nc)
		a.mu.Unlock()
	}
	return nc, nil
}

// bound wraps a go-mssqldb connector so that only its connect is bounded.
func bound(c *mssqldb.Connector, timeout time.Duration, tokens *tokenSource) driver.Connector {
	if timeout <= 0 {
		timeout = DefaultConnectTimeout
	}
	c.Dialer = &deadlineDialer{nd: net.Dialer{KeepAlive: 30 * time.Second}}
	return &boundedConnector{inner: c, timeout: timeout, tokens: tokens}
}
