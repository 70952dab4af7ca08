package mssql

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	mssqldb "github.com/microsoft/go-mssqldb"
)

// dialingConnector stands in for go-mssqldb's connector: it dials through
// the dialer (as go-mssqldb does with Connector.Dialer) and returns the
// socket inside a driver.Conn, so the test can use it after Connect.
type dialingConnector struct {
	d    *deadlineDialer
	addr string
}

type sockConn struct {
	driver.Conn
	nc net.Conn
}

func (c *dialingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	nc, err := c.d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, err
	}
	return &sockConn{nc: nc}, nil
}

func (c *dialingConnector) Driver() driver.Driver { return nil }

// The connect deadline bounds the attempt only: once connected, a read that
// waits longer than the connect timeout (a slow statement) still succeeds.
func TestConnectDeadlineIsClearedOnceConnected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const timeout = 50 * time.Millisecond
	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer c.Close()
		time.Sleep(6 * timeout) // the "statement" takes longer than a connect may
		_, err = c.Write([]byte{1})
		served <- err
	}()
	bc := &boundedConnector{inner: &dialingConnector{d: &deadlineDialer{}, addr: ln.Addr().String()}, timeout: timeout}
	conn, err := bc.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	nc := conn.(*sockConn).nc
	defer nc.Close()
	b := make([]byte, 1)
	if _, err := io.ReadFull(nc, b); err != nil {
		t.Fatalf("read after connect: %v (the connect deadline still applies to a connection that is up)", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
}

// A failed attempt's context and socket deadline come from the connect
// timeout, whatever the caller's context allows.
func TestConnectDeadlineBoundsTheAttempt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			time.Sleep(time.Second)
		}
	}()
	var gotDeadline time.Time
	inner := connectorFunc(func(ctx context.Context) (driver.Conn, error) {
		gotDeadline, _ = ctx.Deadline()
		nc, err := (&deadlineDialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			return nil, err
		}
		defer nc.Close()
		_, err = nc.Read(make([]byte, 1)) // pre-login: the server stays silent
		return nil, err
	})
	caller, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	start := time.Now()
	_, err = (&boundedConnector{inner: inner, timeout: 100 * time.Millisecond}).Connect(caller)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("Connect: %v, want a socket timeout", err)
	}
	if gotDeadline.IsZero() || gotDeadline.After(start.Add(time.Minute)) {
		t.Fatalf("the attempt's context deadline is %v, want the connect timeout's", gotDeadline)
	}
}

type connectorFunc func(ctx context.Context) (driver.Conn, error)

func (f connectorFunc) Connect(ctx context.Context) (driver.Conn, error) { return f(ctx) }
func (f connectorFunc) Driver() driver.Driver                            { return nil }

func TestRetryDeadlockOnce(t *testing.T) {
	deadlock := fmt.Errorf("update: %w", mssqldb.Error{Number: 1205, Message: "chosen as the deadlock victim"})
	other := mssqldb.Error{Number: 547}
	appLockVictim := mssqldb.Error{Number: 51205, Message: "sequence lock: chosen as deadlock victim"}
	lockTimeout := mssqldb.Error{Number: 50001, Message: "sequence lock not granted in time"}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		results []error
		calls   int
		wantErr error
	}{
		{"success runs once", context.Background(), []error{nil}, 1, nil},
		{"victim then success: retried", context.Background(), []error{deadlock, nil}, 2, nil},
		{"victim twice: given up after one retry", context.Background(), []error{deadlock, deadlock, nil}, 2, deadlock},
		{"other errors are not retried", context.Background(), []error{other, nil}, 1, other},
		{"not retried once the caller gave up", cancelled, []error{deadlock, nil}, 1, deadlock},
		// sp_getapplock returning -3 (the lock request chosen as deadlock
		// victim): our batches raise 51205, Migrate returns its sentinel;
		// both are retried as 1205 is, even once classified.
		{"app lock victim (51205) then success: retried", context.Background(), []error{appLockVictim, nil}, 2, nil},
		{"classified app lock victim then success: retried", context.Background(), []error{classify(appLockVictim, "put", true), nil}, 2, nil},
		{"migration lock victim then success: retried", context.Background(), []error{classify(errMigrateLockDeadlock, "migrate", true), nil}, 2, nil},
		{"app lock timeout (50001) is not retried", context.Background(), []error{lockTimeout, nil}, 1, lockTimeout},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := retryDeadlock(tc.ctx, func() error {
				calls++
				return tc.results[calls-1]
			})
			if calls != tc.calls {
				t.Errorf("ran %d times, want %d", calls, tc.calls)
			}
			if fmt.Sprint(err) != fmt.Sprint(tc.wantErr) {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}
