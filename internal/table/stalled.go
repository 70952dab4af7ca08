package table

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// PendingRuns returns at most limit runs still recorded Pending, newest
// first: a run stays Pending until its first plan page is enqueued, so one
// found Pending long after it started has lost its first planner message
// (see syncer's resumeStalled).
func (s *Store) PendingRuns(ctx context.Context, limit int) ([]Run, error) {
	if limit <= 0 {
		return nil, nil
	}
	filter := "PartitionKey eq '" + runPartition + "' and status eq '" + RunPending + "'"
	pager := s.runs.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: to.Ptr(runListSelect + "," + deletingProperty), Top: to.Ptr(int32(min(limit, 1000)))})
	var runs []Run
	for pager.More() && len(runs) < limit {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, wrap(err, "list pending runs")
		}
		for _, raw := range page.Entities {
			e, err := unmarshal(raw)
			if err != nil {
				return nil, err
			}
			if deleting(e) {
				continue
			}
			runs = append(runs, runFrom(e))
			if len(runs) == limit {
				break
			}
		}
	}
	return runs, nil
}
