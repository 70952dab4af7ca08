package httpapi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"dualsync/internal/failover"
	"dualsync/internal/syncer"
)

// What health adds to the databases' state for the on-call: whether Queue
// and Table Storage answer, and the last nightly run.

// storageTimeout bounds one storage check: the SDKs retry for longer than
// a health probe may wait.
const storageTimeout = 3 * time.Second

// Option adds an optional part to the server.
type Option func(*server)

// StorageCheck is one storage service health reports on: Name ("queue",
// "table") and a call that fails when the service does not answer.
type StorageCheck struct {
	Name  string
	Check func(ctx context.Context) error
}

// WithStorage makes health check these storage services: one that fails
// makes the status degraded (the API serves; sync and runs wait).
func WithStorage(checks ...StorageCheck) Option {
	return func(s *server) { s.ops.storage = append(s.ops.storage, checks...) }
}

// WithNightly makes the health details show the last nightly run.
func WithNightly(last func(ctx context.Context) (syncer.NightlyRun, bool, error)) Option {
	return func(s *server) { s.ops.nightly = last }
}

type ops struct {
	storage []StorageCheck
	nightly func(ctx context.Context) (syncer.NightlyRun, bool, error)
}

// StorageHealth is one storage service's state: "ok" or "down" with why.
type StorageHealth struct {
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// Details is the body of /api/health/details: the databases' health
// (failover.Health, inline) and what the on-call asks next.
type Details struct {
	failover.Health
	Storage        map[string]StorageHealth `json:"storage"`
	LastNightlyRun *syncer.NightlyRun       `json:"lastNightlyRun"`
}

// storageNames says which service each check is, in messages.
var storageNames = map[string]string{"queue": "Queue Storage", "table": "Table Storage"}

// checkStorage runs the storage checks concurrently.
func (s *server) checkStorage(ctx context.Context) map[string]StorageHealth {
	out := make(map[string]StorageHealth, len(s.ops.storage))
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	for _, c := range s.ops.storage {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, storageTimeout)
			defer cancel()
			h := StorageHealth{Status: "ok"}
			if err := c.Check(cctx); err != nil {
				h = StorageHealth{Status: "down", Reason: storageReason(c.Name, err, cctx.Err() != nil)}
			}
			mu.Lock()
			out[c.Name] = h
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// storageReason says why a storage service is down without the SDK's text
// (it carries the account's URLs): the service's answer, or none.
func storageReason(name string, err error, timedOut bool) string {
	service := storageNames[name]
	if service == "" {
		service = name
	}
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &re):
		return fmt.Sprintf("%s answered %d %s", service, re.StatusCode, re.ErrorCode)
	case timedOut:
		return fmt.Sprintf("%s did not answer within %s", service, storageTimeout)
	default:
		return service + " is unreachable"
	}
}

// withStorage lowers an ok status to degraded when a storage service is down.
func withStorage(status string, storage map[string]StorageHealth) string {
	for _, h := range storage {
		if h.Status != "ok" && status == "ok" {
			return "degraded"
		}
	}
	return status
}

// check is the anonymous probe's check: databases and storage.
func (s *server) check(ctx context.Context) failover.Health {
	var (
		h  failover.Health
		st map[string]StorageHealth
		wg sync.WaitGroup
	)
	wg.Go(func() { h = s.checker.Health(ctx) })
	wg.Go(func() { st = s.checkStorage(ctx) })
	wg.Wait()
	h.Status = withStorage(h.Status, st)
	return h
}

// details is the keyed report, all parts read concurrently.
func (s *server) details(ctx context.Context) Details {
	var (
		d  Details
		wg sync.WaitGroup
	)
	wg.Go(func() { d.Health = s.checker.Health(ctx) })
	wg.Go(func() { d.Storage = s.checkStorage(ctx) })
	if s.ops.nightly != nil {
		wg.Go(func() {
			cctx, cancel := context.WithTimeout(ctx, storageTimeout)
			defer cancel()
			if n, ok, err := s.ops.nightly(cctx); err == nil && ok {
				d.LastNightlyRun = &n
			}
		})
	}
	wg.Wait()
	d.Status = withStorage(d.Status, d.Storage)
	return d
}
