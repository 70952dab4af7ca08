package memdb

import (
	"context"
	"slices"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// tombstoneOf returns the deletion time and vector of row id of entity e;
// ok is false unless the row exists.
func (s *state) tombstoneOf(e domain.Entity, id int64) (deleted *time.Time, ver domain.Vector, ok bool) {
	if e == domain.EntityUser {
		u, ok := s.users.get(id)
		return u.DeletedAt, u.Ver, ok
	}
	p, ok := s.products.get(id)
	return p.DeletedAt, p.Ver, ok
}

func (s *state) ids(e domain.Entity, after int64) []int64 {
	if e == domain.EntityUser {
		return s.users.after(after)
	}
	return s.products.after(after)
}

func (db *DB) PurgeCandidates(ctx context.Context, e domain.Entity, after int64, before time.Time, limit int) ([]store.Tombstone, error) {
	if err := checkEntity(e); err != nil {
		return nil, err
	}
	before = domain.Millis(before)
	out := []store.Tombstone{}
	err := db.do(ctx, "PurgeCandidates", func(s *state) error {
		waiting := s.outboxIDs(e)
		for _, id := range s.ids(e, after) {
			if len(out) == limitOf(limit) {
				break
			}
			if del, ver, _ := s.tombstoneOf(e, id); del != nil && del.Before(before) && !waiting[id] {
				out = append(out, store.Tombstone{ID: id, Ver: ver})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// PurgeTombstones deletes each of ts that is still a tombstone deleted
// before `before`, holding exactly ts's vector, with no outbox entry.
func (db *DB) PurgeTombstones(ctx context.Context, e domain.Entity, ts []store.Tombstone, before time.Time) ([]int64, error) {
	if err := checkEntity(e); err != nil {
		return nil, err
	}
	deleted := []int64{}
	if len(ts) == 0 {
		return deleted, nil
	}
	before = domain.Millis(before)
	err := db.do(ctx, "PurgeTombstones", func(s *state) error {
		waiting := s.outboxIDs(e)
		for _, x := range ts {
			del, ver, ok := s.tombstoneOf(e, x.ID)
			if !ok || del == nil || !del.Before(before) || ver != x.Ver || waiting[x.ID] {
				continue
			}
			if e == domain.EntityUser {
				s.users.remove(x.ID) // a tombstone holds no email index entry
			} else {
				s.products.remove(x.ID)
			}
			deleted = append(deleted, x.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Sort(deleted)
	return deleted, nil
}
