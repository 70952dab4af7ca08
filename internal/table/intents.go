package table

import (
	"context"

	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// An intent is the outcome a merge is about to write, recorded before it
// writes either database: if recording the outcome afterwards fails (a
// timeout, an instance recycled), the redelivered message finds both
// databases equal and would call the item unchanged; the intent tells it
// what made them equal. It lives beside the item's attempt errors
// (RowKey intent-<entity>-<id>), is never listed or counted, and the next
// intent of the item replaces it.

// RecordIntent records r (with r.Ver, the vector both databases will hold)
// as the intended outcome of item (r.Entity, r.ID) in partition (a run id
// or realtime-YYYYMMDD).
func (s *Store) RecordIntent(ctx context.Context, partition string, r Result) error {
	if err := checkItem(partition, r.Entity, r.ID); err != nil {
		return err
	}
	part, err := s.itemPartition(ctx, partition, r.ID)
	if err != nil {
		return err
	}
	props := map[string]any{
		"entity": string(r.Entity),
		"id":     aztables.EDMInt64(r.ID),
		"status": r.Status,
		"reason": r.Reason,
		"verP":   aztables.EDMInt64(r.Ver.P),
		"verF":   aztables.EDMInt64(r.Ver.F),
	}
	setTime(props, "updatedAt", r.Version)
	if r.Detail != "" {
		props["detail"] = r.Detail // marshal splits it within Azure's limits (limits.go)
	}
	body, err := marshal(itemKey("intent", r.Entity, r.ID), part, props)
	if err != nil {
		return err
	}
	if _, err := s.results.UpsertEntity(ctx, body, &aztables.UpsertEntityOptions{UpdateMode: aztables.UpdateModeReplace}); err != nil {
		return wrap(err, "record intent")
	}
	return nil
}

// Intent returns the last intent recorded for item (e, id) in partition.
func (s *Store) Intent(ctx context.Context, partition string, e domain.Entity, id int64) (Result, bool, error) {
	if err := checkItem(partition, e, id); err != nil {
		return Result{}, false, err
	}
	part, err := s.itemPartition(ctx, partition, id)
	if err != nil {
		return Result{}, false, err
	}
	resp, err := s.results.GetEntity(ctx, part, itemKey("intent", e, id), nil)
	if err != nil {
		if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
			return Result{}, false, nil
		}
		return Result{}, false, wrap(err, "get intent")
	}
	ent, err := unmarshal(resp.Value)
	if err != nil {
		return Result{}, false, err
	}
	p := ent.Properties
	return Result{
		Entity:  e,
		ID:      id,
		Status:  propString(p, "status"),
		Reason:  propString(p, "reason"),
		Detail:  propString(p, "detail"),
		Version: propTime(p, "updatedAt"),
		Ver:     domain.Vector{P: propInt64(p, "verP"), F: propInt64(p, "verF")},
	}, true, nil
}
