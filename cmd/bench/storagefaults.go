package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"dualsync/internal/testenv/faultproxy"
)

// The storage-faults section (issue 29): a full run over FaultProducts
// products (a fifth of them differing four ways) under devhost, once on
// the bench's Azurite straight and once with every table and queue request
// (the handler's and devhost's) through fault proxies at the drill's rates.
// `-only storage-faults` runs it alone and replaces its section of -out.

// faultRates are those of the storage chaos drill (e2e/TestStorageChaos).
var faultRates = faultproxy.FaultRates{Busy: 0.05, Drop: 0.03, Fail: 0.02, Reset: 0.01, Delay: 0.10, MaxDelay: 300 * time.Millisecond}

func (b *bench) storageFaultsSection(ctx context.Context, rep *report) error {
	n := b.cfg.FaultProducts
	if n <= 0 {
		return errors.New("-fault-products must be positive")
	}
	type result struct {
		took   time.Duration
		counts string
		faults map[string]int
	}
	measure := func(faulty bool) (result, error) {
		var res result
		p, err := b.newPair(ctx, n)
		if err != nil {
			return res, err
		}
		if err := drift(ctx, p, n, n/5); err != nil {
			return res, err
		}
		storage := b.cfg.Storage
		var tables, queues *faultproxy.FaultProxy
		if faulty {
			te, err1 := faultproxy.Endpoint(storage, "TableEndpoint")
			qe, err2 := faultproxy.Endpoint(storage, "QueueEndpoint")
			if err := errors.Join(err1, err2); err != nil {
				return res, err
			}
			if tables, err = faultproxy.Start(te, 29); err != nil {
				return res, err
			}
			defer tables.Close()
			if queues, err = faultproxy.Start(qe, 30); err != nil {
				return res, err
			}
			defer queues.Close()
			storage = faultproxy.ViaFaultProxies(storage, tables, queues)
		}
		// No nightly run or retention pass in the middle of the measurement.
		dh, base, err := b.startDevhostOn(ctx, p, storage, "NightlySyncSchedule=0 0 0 1 1 *")
		if err != nil {
			return res, err
		}
		defer dh.stop()
		if faulty {
			tables.SetRates(faultRates, nil)
			queues.SetRates(faultRates, nil)
		}
		// A message whose redelivery loses its dequeue answer again waits
		// a second lease: 15 minutes are not enough under faults.
		st, took, err := faultTolerantRun(ctx, base, `{"mode":"full"}`, max(b.cfg.SyncTimeout, time.Hour))
		if err != nil {
			return res, err
		}
		res.took = took
		if cs, ok := st["customStatus"].(map[string]any); ok {
			res.counts = fmt.Sprint(cs["counts"])
		}
		if faulty {
			res.faults = queues.Counts()
			for k, v := range tables.Counts() {
				res.faults["table "+k] = v
			}
		}
		return res, nil
	}
	b.logf("storage faults: a full run over %d products, clean", n)
	clean, err := measure(false)
	if err != nil {
		return fmt.Errorf("clean run: %w", err)
	}
	b.logf("storage faults: the same run under faults")
	faulty, err := measure(true)
	if err != nil {
		return fmt.Errorf("run under faults: %w", err)
	}
	rep.Faults = append(rep.Faults,
		simpleRow{fmt.Sprintf("Full run over %d products (%d differing), every table and queue request through the fault proxies", n, n/5),
			secs(faulty.took), secs(clean.took) + " without faults", fmt.Sprintf("%.2f", faulty.took.Seconds()/clean.took.Seconds()), "measured", "yes"},
		simpleRow{"Counts of the two runs", faulty.counts, clean.counts, "—", "equal", yesNo(faulty.counts == clean.counts)},
		simpleRow{"Dequeue answers lost (each hides the messages it held for devhost's 10-minute lease, as Azure's host does)",
			fmt.Sprint(faulty.faults["drop GET messages"]), "—", "—", "—", "—"},
	)
	rep.FaultsMethod = fmt.Sprintf("Storage faults: two database pairs loaded alike (%d products, %d of them made to differ four ways as in the diff section); "+
		"devhost on the first with the bench's Azurite straight, then devhost on the second with its table and queue endpoints through two "+
		"fault proxies (internal/testenv/faultproxy) at the drill's rates: %.0f%% 503 ServerBusy not served, %.0f%% served and the answer dropped, "+
		"%.0f%% served and answered 500, %.0f%% connection reset, %.0f%% delayed up to %s. Faults injected: %s. "+
		"Why the difference: a dequeue whose answer is lost was carried out, so the messages it took (up to batchSize, 16) stay invisible "+
		"for the lease set on them, 10 minutes (devhost sets what Azure's host sets, not configurable there), renewed by nobody; the run is "+
		"done only when the last of them comes back and is processed (meanwhile its customStatus.waiting says so). The other faults cost a "+
		"storage SDK retry each, and the drill shows them costing seconds, not minutes.",
		n, n/5, 100*faultRates.Busy, 100*faultRates.Drop, 100*faultRates.Fail, 100*faultRates.Reset, 100*faultRates.Delay, faultRates.MaxDelay, faultTally(faulty.faults))
	return nil
}

// faultTally lists the non-zero per-fault totals.
func faultTally(c map[string]int) string {
	var parts []string
	for _, k := range []string{"requests", "busy", "drop", "fail", "reset", "delay"} {
		parts = append(parts, fmt.Sprintf("queue %s %d, table %s %d", k, c[k], k, c["table "+k]))
	}
	return strings.Join(parts, "; ")
}

// faultTolerantRun is modeRun retrying the answers 503 with Retry-After a
// storage fault may give (starting the run, reading its status).
func faultTolerantRun(ctx context.Context, base, body string, timeout time.Duration) (map[string]any, time.Duration, error) {
	start := time.Now()
	var id string
	for id == "" {
		var st runStatus
		code, err := getJSON(ctx, http.MethodPost, base+"/api/start-product-sync", strings.NewReader(body), &st)
		switch {
		case code == http.StatusServiceUnavailable:
		case err != nil:
			return nil, 0, err
		default:
			id = st.runID()
		}
		if time.Since(start) > timeout {
			return nil, 0, errors.New("could not start a run")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for {
		var s map[string]any
		code, err := getJSON(ctx, http.MethodGet, base+"/api/product-sync/"+id, nil, &s)
		if err == nil && code == http.StatusOK {
			if s["runtimeStatus"] != "Completed" {
				return s, 0, fmt.Errorf("run %s ended %v: %v", id, s["runtimeStatus"], s["customStatus"])
			}
			return s, time.Since(start), nil
		}
		if err != nil && code != http.StatusServiceUnavailable && code != http.StatusAccepted {
			return nil, 0, err
		}
		if time.Since(start) > timeout {
			return nil, 0, fmt.Errorf("run %s not final after %s", id, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (r *report) faultsMarkdown(p func(string, ...any)) {
	if len(r.Faults) == 0 {
		return
	}
	p("\n## Storage faults\n\n")
	p("Generated by `%s` on %s UTC. Ratio = the run's time under faults ÷ the same run's without them.\n\n", r.Command, r.Started.Format("2006-01-02 15:04"))
	p("| Measure | Value | Baseline | Ratio | Goal | Met? |\n|---|---:|---:|---:|---|---|\n")
	for _, s := range r.Faults {
		p("| %s | %s | %s | %s | %s | %s |\n", s.What, s.Value, s.Baseline, s.Ratio, s.Goal, s.Met)
	}
	if r.FaultsMethod != "" {
		p("\n%s\n", r.FaultsMethod)
	}
}

// spliceSection replaces the section under heading ("## Storage faults")
// of the report at path, or adds it before the notes; every other section
// stays as the last full run wrote it.
func spliceSection(path, heading, section string) error {
	section = strings.TrimPrefix(section, "\n")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if i := strings.Index(doc, "\n"+heading+"\n"); i >= 0 {
		end := len(doc)
		if j := strings.Index(doc[i+1:], "\n## "); j >= 0 {
			end = i + 1 + j
		}
		doc = doc[:i+1] + section + doc[end:]
	} else if i := strings.Index(doc, "\n## Notes from this run\n"); i >= 0 {
		doc = doc[:i+1] + section + "\n" + doc[i+1:]
	} else {
		doc += "\n" + section
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
