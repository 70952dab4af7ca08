package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The diff section (issue 22): a catalogue of DiffProducts products in both
// databases with 0.1% of them differing four ways; a verify run (nothing
// written) and a diff run over it; beside them a full run over
// DiffFullProducts products with the same share differing, so the report
// shows the ratio per product. `-only diff` runs this section alone.

// drift makes n products differ, a quarter each way, spread over the ids:
// changed on the primary by SQL (no new version: behind the API's back);
// changed on the fallback as an API write there does (its vector entry and
// field time move); present on one side only; deleted on one side.
func drift(ctx context.Context, p pair, total, n int) error {
	stride := max(total/max(n, 1), 1)
	id := func(k int) int64 { return int64(2*(k*stride+stride/2) + 1) } // the k-th odd id, spread out
	q := n / 4
	var ids [4][]int64
	for k := range n {
		ids[min(k/max(q, 1), 3)] = append(ids[min(k/max(q, 1), 3)], id(k))
	}
	stmts := []struct {
		url, sql string
		ids      []int64
	}{
		{p.Primary, `UPDATE products SET price = price + 1 WHERE id = ANY($1)`, ids[0]},
		{p.Fallback, `UPDATE products SET name = name || ' (changed)', updated_at = updated_at + interval '1 second',
			name_at = updated_at + interval '1 second', ver_f = ver_f + 1 WHERE id = ANY($1)`, ids[1]},
		{p.Fallback, `DELETE FROM products WHERE id = ANY($1)`, ids[2][:len(ids[2])/2]},
		{p.Primary, `DELETE FROM products WHERE id = ANY($1)`, ids[2][len(ids[2])/2:]},
		{p.Primary, `UPDATE products SET deleted_at = updated_at + interval '1 second', updated_at = updated_at + interval '1 second',
			ver_p = ver_p + 1 WHERE id = ANY($1)`, ids[3]},
	}
	for _, s := range stmts {
		conn, err := pgx.Connect(ctx, s.url)
		if err != nil {
			return err
		}
		tag, err := conn.Exec(ctx, s.sql, s.ids)
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("drift: %w", err)
		}
		if int(tag.RowsAffected()) != len(s.ids) {
			return fmt.Errorf("drift: %s changed %d rows, want %d", s.sql, tag.RowsAffected(), len(s.ids))
		}
	}
	return nil
}

// fingerprint is a digest of every row of the tables sync writes, and the
// write counters PostgreSQL keeps for them: equal before and after means
// nothing was written.
func fingerprint(ctx context.Context, url string) (digest string, writes int64, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return "", 0, err
	}
	defer conn.Close(ctx)
	err = conn.QueryRow(ctx, `SELECT md5(coalesce(string_agg(p::text, '|' ORDER BY p.id), '')) ||
		(SELECT md5(coalesce(string_agg(o::text, '|' ORDER BY o::text), '')) FROM outbox o) FROM products p`).Scan(&digest)
	if err != nil {
		return "", 0, err
	}
	err = conn.QueryRow(ctx, `SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables`).Scan(&writes)
	return digest, writes, err
}

// modeRun starts a run with body and waits until it is final; it returns
// the final status.
func modeRun(ctx context.Context, base, body string, timeout time.Duration) (map[string]any, time.Duration, error) {
	start := time.Now()
	var st runStatus
	if _, err := getJSON(ctx, http.MethodPost, base+"/api/start-product-sync", strings.NewReader(body), &st); err != nil {
		return nil, 0, err
	}
	id := st.runID()
	for {
		var s map[string]any
		code, err := getJSON(ctx, http.MethodGet, base+"/api/product-sync/"+id, nil, &s)
		if err == nil && code == http.StatusOK {
			if s["runtimeStatus"] != "Completed" {
				return s, 0, fmt.Errorf("run %s ended %v: %v", id, s["runtimeStatus"], s["customStatus"])
			}
			return s, time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return nil, 0, fmt.Errorf("run %s not final after %s", id, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deliveries counts the queue messages devhost has handed to functions so
// far, from its log ("Trigger Details" once per delivery, redeliveries too).
func (b *bench) deliveries() (int, error) {
	if f, ok := b.log.(*os.File); ok {
		_ = f.Sync()
	}
	data, err := os.ReadFile(filepath.Join(b.work, "processes.log"))
	if err != nil {
		return 0, err
	}
	return bytes.Count(data, []byte("Trigger Details: MessageId")), nil
}

func counts(s map[string]any) (cs map[string]any, total int64, text string) {
	cs, _ = s["customStatus"].(map[string]any)
	t, _ := cs["total"].(float64)
	c, _ := json.Marshal(cs["counts"])
	return cs, int64(t), string(c)
}

func (b *bench) diffSection(ctx context.Context, rep *report) error {
	n, differ := b.cfg.DiffProducts, max(b.cfg.DiffProducts/1000, 4)
	b.logf("diff: %d products, %d differing: loading", n, differ)
	t0 := time.Now()
	p, err := b.newPair(ctx, n)
	if err != nil {
		return err
	}
	if err := drift(ctx, p, n, differ); err != nil {
		return err
	}
	b.logf("diff: loaded in %s", secs(time.Since(t0)))
	if err := b.clearQueues(ctx); err != nil {
		return err
	}
	dh, base, err := b.startDevhost(ctx, p)
	if err != nil {
		return err
	}
	defer dh.stop()
	pid, err := childPID(dh.cmd.Process.Pid)
	if err != nil {
		return err
	}
	mib := func(v int64) string { return fmt.Sprintf("%.1f MiB", float64(v)/(1<<20)) }

	// Verify first, on the drifted catalogue: it must write nothing.
	dp0, wp0, err1 := fingerprint(ctx, p.Primary)
	df0, wf0, err2 := fingerprint(ctx, p.Fallback)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("fingerprint: %v %v", err1, err2)
	}
	m0, err := b.deliveries()
	if err != nil {
		return err
	}
	vs, vwall, err := modeRun(ctx, base, `{"mode":"verify"}`, b.cfg.SyncTimeout)
	if err != nil {
		return fmt.Errorf("verify run: %w", err)
	}
	m1, _ := b.deliveries()
	time.Sleep(1500 * time.Millisecond) // PostgreSQL publishes its counters within a second
	dp1, wp1, err1 := fingerprint(ctx, p.Primary)
	df1, wf1, err2 := fingerprint(ctx, p.Fallback)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("fingerprint: %v %v", err1, err2)
	}
	vcs, vtotal, vcounts := counts(vs)
	written := (wp1 - wp0) + (wf1 - wf0)
	same := dp0 == dp1 && df0 == df1
	b.addRows(rep,
		simpleRow{What: fmt.Sprintf("Verify run, %d products (%d differing) to Completed; counts %s, differs %v, total %d", n, differ, vcounts, vcs["differs"], vtotal),
			Value: secs(vwall), Baseline: "—", Ratio: "—", Goal: "≤ 60 s", Met: yesNo(vwall <= 60*time.Second)},
		simpleRow{What: "Verify run: rows written to either database (pg_stat_user_tables inserts+updates+deletes; every row's digest before = after)",
			Value: fmt.Sprintf("%d (digests equal: %v)", written, same), Baseline: "—", Ratio: "—", Goal: "0", Met: yesNo(written == 0 && same)},
		simpleRow{What: "Verify run: queue messages delivered", Value: fmt.Sprint(m1 - m0), Baseline: "—", Ratio: "—", Goal: "≤ 2,100", Met: yesNo(m1-m0 <= 2100)},
	)

	ds, dwall, err := modeRun(ctx, base, `{"mode":"diff"}`, b.cfg.SyncTimeout)
	if err != nil {
		return fmt.Errorf("diff run: %w", err)
	}
	m2, _ := b.deliveries()
	hwm, err := vmHWM(pid)
	if err != nil {
		return err
	}
	_, dtotal, dcounts := counts(ds)
	pv, err1 := versions(ctx, p.Primary)
	fv, err2 := versions(ctx, p.Fallback)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("versions: %v %v", err1, err2)
	}
	left := differing(pv, fv)
	b.addRows(rep,
		simpleRow{What: fmt.Sprintf("Diff run, %d products (%d differing) to Completed; counts %s, total %d; rows differing afterwards: %d", n, differ, dcounts, dtotal, left),
			Value: secs(dwall), Baseline: "—", Ratio: "—", Goal: "≤ 60 s", Met: yesNo(dwall <= 60*time.Second && left == 0)},
		simpleRow{What: "Diff run: queue messages delivered (planner pages, ranges, one per differing item, redeliveries)", Value: fmt.Sprint(m2 - m1),
			Baseline: "—", Ratio: "—", Goal: "≤ 2,100", Met: yesNo(m2-m1 <= 2100)},
		simpleRow{What: "Handler peak RSS (VmHWM) over the verify and diff runs", Value: mib(hwm), Baseline: "—", Ratio: "—", Goal: "≤ 150 MB", Met: yesNo(hwm <= 150e6)},
	)
	dh.stop()

	// Beside it: a full run over fewer products, the same share differing.
	fn := b.cfg.DiffFullProducts
	if fn <= 0 {
		return nil
	}
	b.logf("diff: full run over %d products", fn)
	fp, err := b.newPair(ctx, fn)
	if err != nil {
		return err
	}
	if err := drift(ctx, fp, fn, max(fn/1000, 4)); err != nil {
		return err
	}
	if err := b.clearQueues(ctx); err != nil {
		return err
	}
	fdh, fbase, err := b.startDevhost(ctx, fp)
	if err != nil {
		return err
	}
	defer fdh.stop()
	fs, fwall, err := modeRun(ctx, fbase, `{"mode":"full"}`, b.cfg.SyncTimeout)
	if err != nil {
		return fmt.Errorf("full run: %w", err)
	}
	_, ftotal, _ := counts(fs)
	perDiff, perFull := dwall.Seconds()/float64(max(dtotal, 1)), fwall.Seconds()/float64(max(ftotal, 1))
	r := perFull / perDiff
	b.addRows(rep, simpleRow{
		What:  fmt.Sprintf("Seconds per product: diff run (%d products) against a full run over %d products with the same share differing (%s)", dtotal, ftotal, secs(fwall)),
		Value: fmt.Sprintf("%.2f µs", perDiff*1e6), Baseline: fmt.Sprintf("%.2f µs (full)", perFull*1e6),
		Ratio: fmt.Sprintf("%.1f× fewer", r), Goal: "≥ 20×", Met: yesNo(r >= 20),
	})
	return nil
}

// addRows adds rows to the report and says them at once: the section takes
// minutes, and a run cut short still shows what it measured.
func (b *bench) addRows(rep *report, rows ...simpleRow) {
	rep.Sync = append(rep.Sync, rows...)
	for _, r := range rows {
		b.logf("%s: %s (baseline %s, ratio %s, goal %s, met %s)", r.What, r.Value, r.Baseline, r.Ratio, r.Goal, r.Met)
	}
}
