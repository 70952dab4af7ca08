package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
	"dualsync/internal/syncer"
	"dualsync/internal/table"
)

// Retention: one expired run of -retention-results results (and a recent
// run beside it) in tables of the bench's own on its Azurite; one
// retention pass (syncer.Engine.RetentionPass, what the Retention timer
// runs) is timed. The baseline is the same result entities inserted in
// entity-group transactions of 100, as many at a time as a deletion
// sends: the least Azurite needs to write them, in the same run.

const retentionWorkers = 8 // table.deleteWorkers: the deletion's transactions in flight

func (b *bench) retentionSection(ctx context.Context, rep *report) error {
	n := b.cfg.RetentionResults
	tsvc, err := aztables.NewServiceClientFromConnectionString(b.cfg.Storage, nil)
	if err != nil {
		return err
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	prefix := "bench" + hex.EncodeToString(rb[:])
	store := table.New(tsvc, &table.Options{Prefix: prefix})
	defer func() {
		for _, t := range []string{table.RunsTable, table.ResultsTable} {
			_, _ = tsvc.DeleteTable(context.WithoutCancel(ctx), prefix+t, nil)
		}
	}()
	if err := store.Ensure(ctx); err != nil {
		return err
	}
	results := tsvc.NewClient(prefix + table.ResultsTable)
	runs := tsvc.NewClient(prefix + table.RunsTable)

	now := time.Now()
	old, err := seedRun(ctx, store, now.Add(-40*24*time.Hour))
	if err != nil {
		return err
	}
	recent, err := seedRun(ctx, store, now.Add(-time.Hour))
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "bench: retention: inserting %d results of an expired run (baseline)\n", n)
	start := time.Now()
	if err := insertResults(ctx, results, old, n); err != nil {
		return err
	}
	insert := time.Since(start)
	if err := insertResults(ctx, results, recent, 1000); err != nil {
		return err
	}
	oldN, err := countRun(ctx, results, runs, old.ID)
	if err != nil {
		return err
	}
	recentN, err := countRun(ctx, results, runs, recent.ID)
	if err != nil {
		return err
	}

	fmt.Fprintf(b.out, "bench: retention: one pass over %d entities of the expired run\n", oldN)
	eng := syncer.New(nil, nil, nil, nil, store, syncer.Options{RetentionBudget: time.Hour})
	start = time.Now()
	pass, err := eng.RetentionPass(ctx)
	del := time.Since(start)
	if err != nil {
		return fmt.Errorf("retention pass: %w", err)
	}
	leftOld, err := countRun(ctx, results, runs, old.ID)
	if err != nil {
		return err
	}
	leftRecent, err := countRun(ctx, results, runs, recent.ID)
	if err != nil {
		return err
	}
	rep.Retention = append(rep.Retention,
		simpleRow{
			What:  fmt.Sprintf("Delete an expired run of %d results (%d entities with plan pages, %d counter shards and the run entity): one retention pass", n, oldN, table.DefaultPartitions*table.Shards),
			Value: secs(del), Baseline: secs(insert) + " to insert its results",
			Ratio: fmt.Sprintf("%.2f", del.Seconds()/insert.Seconds()), Goal: "measured", Met: yesNo(pass.Done && pass.Runs == 1),
		},
		simpleRow{
			What:  "Entities deleted per second",
			Value: fmt.Sprintf("%.0f/s", float64(pass.RunEntities)/del.Seconds()), Baseline: fmt.Sprintf("%.0f/s inserted", float64(n)/insert.Seconds()),
			Ratio: fmt.Sprintf("%.2f", (float64(pass.RunEntities)/del.Seconds())/(float64(n)/insert.Seconds())), Goal: "—", Met: "—",
		},
		simpleRow{
			What:  "Entities of the expired run left in the tables afterwards",
			Value: fmt.Sprint(leftOld), Baseline: fmt.Sprint(oldN) + " before", Ratio: "—", Goal: "0", Met: yesNo(leftOld == 0),
		},
		simpleRow{
			What:  "Entities of a recent run (1,000 results) beside it",
			Value: fmt.Sprint(leftRecent), Baseline: fmt.Sprint(recentN) + " before", Ratio: "—", Goal: "untouched", Met: yesNo(leftRecent == recentN),
		},
	)
	rep.RetentionMethod = fmt.Sprintf("Retention: in tables of its own on the bench's Azurite, the bench creates a run dated 40 days ago (%d partitions, %d plan pages of 1,000 ids) and inserts %d result entities into its partitions in entity-group transactions of 100, %d at a time (the baseline: what Azurite needs to write them), and a run dated an hour ago with 1,000 results. Then it times one retention pass as the Retention timer runs it (`syncer.Engine.RetentionPass`, `RUN_RETENTION` 30 days), which lists the expired run, marks it, deletes its partitions a page of 1,000 keys at a time in transactions of up to 100 deletes (%d in flight) and the run entity last, and counts what is left of both runs with range queries over their partitions.", table.DefaultPartitions, (n+999)/1000, n, retentionWorkers, retentionWorkers)
	return nil
}

// seedRun creates a completed run created at `at`, with the plan pages
// of its ids (inserted by insertResults).
func seedRun(ctx context.Context, s *table.Store, at time.Time) (table.Run, error) {
	var rb [5]byte
	_, _ = rand.Read(rb[:])
	r := table.Run{ID: fmt.Sprintf("%013d%s", 9_999_999_999_999-at.UnixMilli(), hex.EncodeToString(rb[:])), Entity: domain.EntityProduct,
		Trigger: "timer", Status: table.RunCompleted, CreatedTime: at, LastUpdatedTime: at, Partitions: table.DefaultPartitions}
	return r, s.CreateRun(ctx, r)
}

// insertResults adds n result entities (ids 1..n) to run r's partitions and
// the plan pages that list them, retentionWorkers transactions at a time.
func insertResults(ctx context.Context, c *aztables.Client, r table.Run, n int) error {
	var txns [][]aztables.TransactionAction
	byPart := make([][]aztables.TransactionAction, r.Partitions)
	at := aztables.EDMDateTime(r.CreatedTime.UTC())
	for id := 1; id <= n; id++ {
		i := id % r.Partitions
		body, err := jsonEntity(fmt.Sprintf("%s-%02d", r.ID, i), fmt.Sprintf("result-product-%019d", id), map[string]any{
			"entity": "product", "id": aztables.EDMInt64(id), "status": "unchanged", "reason": "", "updatedAt": at, "at": at,
		})
		if err != nil {
			return err
		}
		byPart[i] = append(byPart[i], aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: body})
		if len(byPart[i]) == 100 {
			txns, byPart[i] = append(txns, byPart[i]), nil
		}
	}
	for _, acts := range byPart {
		if len(acts) > 0 {
			txns = append(txns, acts)
		}
	}
	// Plan pages (ids as the planner records them: without the id list,
	// which changes nothing about deleting them).
	var pages []aztables.TransactionAction
	for after := 0; after < n; after += 1000 {
		last := min(after+1000, n)
		body, err := jsonEntity(r.ID, fmt.Sprintf("plan-%019d", after), map[string]any{
			"after": aztables.EDMInt64(after), "count": int32(last - after), "next": aztables.EDMInt64(last), "last": last == n, "owner": "bench", "enqueued": true, "nextQueued": true,
		})
		if err != nil {
			return err
		}
		pages = append(pages, aztables.TransactionAction{ActionType: aztables.TransactionTypeAdd, Entity: body})
		if len(pages) == 100 {
			txns, pages = append(txns, pages), nil
		}
	}
	if len(pages) > 0 {
		txns = append(txns, pages)
	}
	work := make(chan []aztables.TransactionAction)
	go func() {
		defer close(work)
		for _, t := range txns {
			select {
			case work <- t:
			case <-ctx.Done():
				return
			}
		}
	}()
	return parallel(retentionWorkers, func() error {
		var first error
		for acts := range work { // drained even after a failure, so the feeder ends
			if first != nil {
				continue
			}
			if _, err := c.SubmitTransaction(ctx, acts, nil); err != nil {
				first = fmt.Errorf("insert results: %w", err)
			}
		}
		if first != nil {
			return first
		}
		return ctx.Err()
	})
}

func jsonEntity(pk, rk string, props map[string]any) ([]byte, error) {
	return json.Marshal(aztables.EDMEntity{Entity: aztables.Entity{PartitionKey: pk, RowKey: rk}, Properties: props})
}

// countRun counts run id's entities in both tables.
func countRun(ctx context.Context, results, runs *aztables.Client, id string) (int, error) {
	n := 0
	for _, q := range []struct {
		c      *aztables.Client
		filter string
	}{
		{results, "PartitionKey ge '" + id + "' and PartitionKey lt '" + id + ".'"},
		{runs, "PartitionKey eq 'run' and RowKey eq '" + id + "'"},
	} {
		pager := q.c.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &q.filter, Select: to.Ptr("RowKey")})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return 0, err
			}
			n += len(page.Entities)
		}
	}
	return n, nil
}

// retentionMarkdown is the report's Retention section.
func (r *report) retentionMarkdown(p func(string, ...any)) {
	if len(r.Retention) == 0 {
		return
	}
	p("\n## Retention\n\n")
	p("Generated by `%s` on %s UTC. Ratio = the pass's time ÷ the baseline's (inserting the same results in transactions of 100 on the same Azurite).\n\n", r.Command, r.Started.Format("2006-01-02 15:04"))
	p("| Measure | Value | Baseline | Ratio | Goal | Met? |\n|---|---:|---:|---:|---|---|\n")
	for _, s := range r.Retention {
		p("| %s | %s | %s | %s | %s | %s |\n", s.What, s.Value, s.Baseline, s.Ratio, s.Goal, s.Met)
	}
	if r.RetentionMethod != "" {
		p("\n%s\n", r.RetentionMethod)
	}
}

// spliceRetention replaces the Retention section of the report at path
// (or adds it before the notes), keeping every other section as the last
// full run wrote it: `-retention-only` measures this section alone.
func spliceRetention(path string, r *report) error {
	var b strings.Builder
	r.retentionMarkdown(func(format string, a ...any) { fmt.Fprintf(&b, format, a...) })
	section := strings.TrimPrefix(b.String(), "\n")
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	doc := string(old)
	if i := strings.Index(doc, "\n## Retention\n"); i >= 0 {
		end := len(doc)
		if j := strings.Index(doc[i+1:], "\n## "); j >= 0 {
			end = i + 1 + j
		}
		doc = doc[:i+1] + section + doc[end:]
	} else if i := strings.Index(doc, "\n## Notes from this run\n"); i >= 0 {
		doc = doc[:i+1] + section + "\n" + doc[i+1:]
	} else if i := strings.Index(doc, "\n## Method\n"); i >= 0 {
		doc = doc[:i+1] + section + "\n" + doc[i+1:]
	} else {
		doc += "\n" + section
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}
