package table

import (
	"context"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"
)

// RunsByTrigger returns at most limit runs started by trigger ("timer" for
// the nightly runs), newest first; unfinished keeps only those not yet
// recorded Completed or Failed. Health reads the last nightly run with it,
// and the nightly watch the runs whose end it has not seen yet.
func (s *Store) RunsByTrigger(ctx context.Context, trigger string, unfinished bool, limit int) ([]Run, error) {
	if limit <= 0 {
		return nil, nil
	}
	filter := "PartitionKey eq '" + runPartition + "' and trigger eq '" + strings.ReplaceAll(trigger, "'", "''") + "'"
	if unfinished {
		filter += " and status ne '" + RunCompleted + "' and status ne '" + RunFailed + "'"
	}
	pager := s.runs.NewListEntitiesPager(&aztables.ListEntitiesOptions{Filter: &filter, Select: to.Ptr(runListSelect), Top: to.Ptr(int32(min(limit, 1000)))})
	var runs []Run
	for pager.More() && len(runs) < limit {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, wrap(err, "list runs by trigger")
		}
		for _, raw := range page.Entities {
			e, err := unmarshal(raw)
			if err != nil {
				return nil, err
			}
			runs = append(runs, runFrom(e))
			if len(runs) == limit {
				break
			}
		}
	}
	return runs, nil
}
