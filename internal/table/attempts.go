package table

import (
	"context"
	"encoding/json"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/data/aztables"

	"dualsync/internal/domain"
)

// An item's failed attempts are kept in its "error-<entity>-<id>" entity,
// beside its result: the last reason (what the poison handler reports), how
// many attempts failed, and the newest maxHistory of them, so that an
// operator sees an item's attempt history without reading the logs.

// Attempt is one failed attempt to sync an item.
type Attempt struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
	Retry  int       `json:"retry,omitempty"` // the retry round it belonged to; 0 = the run's own
}

const (
	// maxHistory bounds the attempts kept per item (the count goes on).
	maxHistory = 20
	// maxReason bounds one kept reason: reasons are short messages, this
	// only keeps a bug from filling the entity (1 MiB, 64 KiB a property).
	maxReason = 1000
)

// RecordAttemptError records a failed attempt on item (e, id) in partition
// (a run id or realtime-YYYYMMDD) now, outside any retry round.
func (s *Store) RecordAttemptError(ctx context.Context, partition string, e domain.Entity, id int64, reason string) error {
	return s.RecordAttempt(ctx, partition, e, id, Attempt{Reason: reason})
}

// RecordAttempt adds attempt a (At now if zero) to item (e, id)'s failed
// attempts in partition. The entity is read and written back under its ETag
// (added when missing), so attempts of concurrent deliveries are all counted.
func (s *Store) RecordAttempt(ctx context.Context, partition string, e domain.Entity, id int64, a Attempt) error {
	if err := checkItem(partition, e, id); err != nil {
		return err
	}
	partition, err := s.itemPartition(ctx, partition, id)
	if err != nil {
		return err
	}
	if a.At.IsZero() {
		a.At = time.Now()
	}
	a.At = a.At.UTC()
	if len(a.Reason) > maxReason {
		a.Reason = chunks(a.Reason, maxReason)[0]
	}
	key := itemKey("error", e, id)
	for attempt := 0; ; attempt++ {
		n, hist, etag, found, err := s.readAttempts(ctx, partition, key)
		if err != nil {
			return err
		}
		if last := len(hist) - 1; attempt > 0 && last >= 0 && hist[last].At.Equal(a.At) && hist[last].Reason == a.Reason && hist[last].Retry == a.Retry {
			// A write whose answer was lost was carried out: the SDK's retry
			// met our own entity (409) or our own change (412). Its exact
			// time says it is this attempt, counted once already.
			return nil
		}
		hist = append(hist, a)
		if len(hist) > maxHistory {
			hist = hist[len(hist)-maxHistory:]
		}
		js, err := json.Marshal(hist)
		if err != nil {
			return domain.Wrap(domain.KindInternal, err, "encode attempt history")
		}
		body, err := marshal(key, partition, map[string]any{
			"entity":   string(e),
			"id":       aztables.EDMInt64(id),
			"reason":   a.Reason,
			"attempts": int32(n + 1),
			"history":  string(js),
			"at":       aztables.EDMDateTime(a.At),
		})
		if err != nil {
			return err
		}
		if found {
			_, err = s.results.UpdateEntity(ctx, body, &aztables.UpdateEntityOptions{UpdateMode: aztables.UpdateModeReplace, IfMatch: &etag})
		} else {
			_, err = s.results.AddEntity(ctx, body, nil)
		}
		if err == nil {
			return nil
		}
		status, _ := failure(err)
		if (status != 412 && status != 409) || attempt >= 10 {
			return wrap(err, "record attempt error")
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return wrap(err, "record attempt error")
		}
	}
}

// readAttempts reads the attempts entity key of partition; found is false
// if there is none. Entities written before histories were kept count one
// attempt, their reason.
func (s *Store) readAttempts(ctx context.Context, partition, key string) (n int, hist []Attempt, etag azcore.ETag, found bool, err error) {
	resp, err := s.results.GetEntity(ctx, partition, key, nil)
	if err != nil {
		if domain.IsKind(wrap(err, ""), domain.KindNotFound) {
			return 0, nil, "", false, nil
		}
		return 0, nil, "", false, wrap(err, "get attempt errors")
	}
	ent, err := unmarshal(resp.Value)
	if err != nil {
		return 0, nil, "", false, err
	}
	p := ent.Properties
	n = int(propInt64(p, "attempts"))
	if raw := propString(p, "history"); raw != "" {
		_ = json.Unmarshal([]byte(raw), &hist) // a damaged history starts again; the count stands
	}
	if n == 0 { // an older entity: one attempt, its reason
		n = 1
		hist = []Attempt{{At: time.Time(ent.Timestamp).UTC(), Reason: propString(p, "reason")}}
	}
	return n, hist, resp.ETag, true, nil
}

// AttemptError returns the last recorded attempt error of item (e, id) in
// partition; ok is false if there is none.
func (s *Store) AttemptError(ctx context.Context, partition string, e domain.Entity, id int64) (string, bool, error) {
	n, hist, err := s.Attempts(ctx, partition, e, id)
	if err != nil || n == 0 {
		return "", false, err
	}
	return hist[len(hist)-1].Reason, true, nil
}

// Attempts returns how many attempts on item (e, id) in partition failed
// and the newest of them (at most maxHistory, oldest first).
func (s *Store) Attempts(ctx context.Context, partition string, e domain.Entity, id int64) (int, []Attempt, error) {
	if err := checkItem(partition, e, id); err != nil {
		return 0, nil, err
	}
	partition, err := s.itemPartition(ctx, partition, id)
	if err != nil {
		return 0, nil, err
	}
	n, hist, _, _, err := s.readAttempts(ctx, partition, itemKey("error", e, id))
	return n, hist, err
}
