package memdb

import (
	"context"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// nextval hands out the sequence's next id. Like a PostgreSQL sequence it
// is not transactional: an insert that then fails has still spent the id.
func (s *state) nextval(e domain.Entity) int64 {
	id := s.seq[e]
	s.seq[e] = id + 2
	return id
}

// advance moves the entity's sequence past the highest id of this
// database's own parity the table holds (at least id), never backwards, as
// the adapter's advanceSequence: a rebuilt or restored database gets rows
// of its own parity back from the other side through sync. id 0 means
// "look only at the table"; an id of the other parity changes nothing.
func (s *state) advance(role store.Role, e domain.Entity, id int64) {
	parity := idStart(role) % 2
	if id != 0 && id%2 != parity {
		return
	}
	next := s.seq[e]
	if id != 0 && id < next {
		return
	}
	want := max(id, s.table(e).maxID(parity))
	if want == 0 || want < next {
		return
	}
	s.seq[e] = want + 2
}

// maxIDer is what advance and MaxID need of either table.
type maxIDer interface{ maxID(parity int64) int64 }

func (s *state) table(e domain.Entity) maxIDer {
	if e == domain.EntityUser {
		return &s.users
	}
	return &s.products
}

func (db *DB) MaxID(ctx context.Context, e domain.Entity, parity int64) (int64, error) {
	if err := checkEntity(e); err != nil {
		return 0, err
	}
	var top int64
	err := db.do(ctx, "MaxID", func(s *state) error {
		top = s.table(e).maxID(parity)
		return nil
	})
	return top, err
}

// AdvanceSequence moves the sequence past past (and past every own id the
// table holds); past of the other parity only looks at the table.
func (db *DB) AdvanceSequence(ctx context.Context, e domain.Entity, past int64) error {
	if err := checkEntity(e); err != nil {
		return err
	}
	if past%2 != idStart(db.role)%2 {
		past = 0
	}
	return db.do(ctx, "AdvanceSequence", func(s *state) error {
		s.advance(db.role, e, past)
		return nil
	})
}
