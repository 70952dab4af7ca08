package testenv

import (
	"testing"

	"dualsync/internal/testenv/faultproxy"
)

// The storage fault proxy lives in package faultproxy (no testing
// dependency, so cmd/bench uses it too); these are its names here.
type (
	Fault      = faultproxy.Fault
	FaultRates = faultproxy.FaultRates
	FaultProxy = faultproxy.FaultProxy
)

const (
	FaultNone  = faultproxy.FaultNone
	FaultBusy  = faultproxy.FaultBusy
	FaultDrop  = faultproxy.FaultDrop
	FaultFail  = faultproxy.FaultFail
	FaultReset = faultproxy.FaultReset
	FaultDelay = faultproxy.FaultDelay
)

var (
	Writes          = faultproxy.Writes
	Batches         = faultproxy.Batches
	Method          = faultproxy.Method
	RequestKind     = faultproxy.RequestKind
	ViaFaultProxies = faultproxy.ViaFaultProxies
)

// NewFaultProxy starts a proxy to target ("host:port") with no faults; it
// closes when the test ends.
func NewFaultProxy(t testing.TB, target string, seed uint64) *FaultProxy {
	t.Helper()
	p, err := faultproxy.Start(target, seed)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// Endpoint returns the "host:port" of one endpoint (TableEndpoint,
// QueueEndpoint) of connection string conn.
func Endpoint(t testing.TB, conn, key string) string {
	t.Helper()
	e, err := faultproxy.Endpoint(conn, key)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return e
}
