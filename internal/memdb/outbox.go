package memdb

import (
	"context"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// insertOutbox adds an entry in the transaction of the change it describes.
func (s *state) insertOutbox(e domain.Entity, id, counter int64, now time.Time) {
	s.outboxSeq++
	s.outbox = append(s.outbox, store.OutboxEntry{Seq: s.outboxSeq, Entity: e, ID: id, Counter: counter, CreatedAt: now})
}

// param is a time as the adapter sends it: pgx encodes microseconds.
func param(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

func (db *DB) PendingOutbox(ctx context.Context, notSentBefore, resendBefore time.Time, limit int) ([]store.OutboxEntry, error) {
	notSentBefore, resendBefore = param(notSentBefore), param(resendBefore)
	out := []store.OutboxEntry{}
	err := db.do(ctx, "PendingOutbox", func(s *state) error {
		for _, e := range s.outbox {
			if len(out) == limitOf(limit) {
				break
			}
			if (e.SentAt == nil && e.CreatedAt.Before(notSentBefore)) || (e.SentAt != nil && e.SentAt.Before(resendBefore)) {
				e.SentAt = copyTime(e.SentAt)
				out = append(out, e)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// covered returns whether marks cover entry e of entity: as the adapter's
// join, an entry matches if any mark of its id reaches its counter.
func covered(e store.OutboxEntry, entity domain.Entity, upTo map[int64]int64) bool {
	u, ok := upTo[e.ID]
	return ok && e.Entity == entity && e.Counter <= u
}

func marksUpTo(marks []store.OutboxMark) map[int64]int64 {
	m := make(map[int64]int64, len(marks))
	for _, k := range marks {
		if u, ok := m[k.ID]; !ok || k.UpTo > u {
			m[k.ID] = k.UpTo
		}
	}
	return m
}

func (db *DB) MarkOutboxSent(ctx context.Context, e domain.Entity, marks []store.OutboxMark, at time.Time) error {
	if len(marks) == 0 {
		return nil // the adapter sends no statement
	}
	upTo, at := marksUpTo(marks), domain.Millis(at)
	return db.do(ctx, "MarkOutboxSent", func(s *state) error {
		for i := range s.outbox {
			if covered(s.outbox[i], e, upTo) {
				s.outbox[i].SentAt = &at // replaced, never written through: snapshots share it
			}
		}
		return nil
	})
}

func (db *DB) AckOutbox(ctx context.Context, e domain.Entity, marks []store.OutboxMark) error {
	if len(marks) == 0 {
		return nil // the adapter sends no statement
	}
	upTo := marksUpTo(marks)
	return db.do(ctx, "AckOutbox", func(s *state) error {
		kept := s.outbox[:0:0]
		for _, o := range s.outbox {
			if !covered(o, e, upTo) {
				kept = append(kept, o)
			}
		}
		s.outbox = kept
		return nil
	})
}

func (db *DB) OutboxDepth(ctx context.Context) (int64, error) {
	var n int64
	err := db.do(ctx, "OutboxDepth", func(s *state) error {
		n = int64(len(s.outbox))
		return nil
	})
	return n, err
}

// outboxIDs returns the ids of entity e with an outbox entry.
func (s *state) outboxIDs(e domain.Entity) map[int64]bool {
	ids := map[int64]bool{}
	for _, o := range s.outbox {
		if o.Entity == e {
			ids[o.ID] = true
		}
	}
	return ids
}
