package memdb

import (
	"context"
	"fmt"

	"dualsync/internal/store"
)

func (db *DB) AddMark(ctx context.Context) (store.Mark, error) {
	var m store.Mark
	err := db.do(ctx, "AddMark", func(s *state) error {
		db.data.tokens++
		s.markSeq++
		m = store.Mark{N: s.markSeq, Token: fmt.Sprintf("%s-mark-%026d", db.role, db.data.tokens)}
		s.marks[m.N] = m.Token
		delete(s.marks, m.N-store.MarksKept) // one at a time: only the latest MarksKept stay
		return nil
	})
	return m, err
}

func (db *DB) HasMark(ctx context.Context, m store.Mark) (bool, error) {
	var ok bool
	err := db.do(ctx, "HasMark", func(s *state) error {
		tok, found := s.marks[m.N]
		ok = found && tok == m.Token
		if !ok && len(s.marks) > 0 {
			oldest := int64(-1)
			for n := range s.marks {
				if oldest < 0 || n < oldest {
					oldest = n
				}
			}
			ok = m.N < oldest // pruned: no evidence
		}
		return nil
	})
	return ok, err
}

func (db *DB) Peer(ctx context.Context, of store.Role) (store.Peer, error) {
	var p store.Peer
	err := db.do(ctx, "Peer", func(s *state) error {
		p = s.peers[of]
		return nil
	})
	return p, err
}

func (db *DB) SetPeer(ctx context.Context, of store.Role, old, p store.Peer) (bool, error) {
	var ok bool
	err := db.do(ctx, "SetPeer", func(s *state) error {
		cur, found := s.peers[of]
		if found != (old != store.Peer{}) || found && !cur.Equal(old) {
			return nil
		}
		p.RegressedAt = p.RegressedAt.UTC().Truncate(1e6)
		s.peers[of] = p
		ok = true
		return nil
	})
	return ok, err
}
