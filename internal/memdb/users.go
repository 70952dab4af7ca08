package memdb

import (
	"context"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

func (db *DB) ListUsers(ctx context.Context, p store.Page) ([]domain.User, error) {
	out := []domain.User{}
	err := db.do(ctx, "ListUsers", func(s *state) error {
		for _, id := range s.users.after(p.After) {
			if r := s.users.rows[id]; !r.Deleted() {
				out = append(out, copyUser(r))
				if len(out) == limitOf(p.Limit) {
					break
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (db *DB) GetUser(ctx context.Context, id int64) (domain.User, error) {
	var u domain.User
	err := db.do(ctx, "GetUser", func(s *state) error {
		r, ok := s.users.get(id)
		if !ok || r.Deleted() {
			return notFound(domain.EntityUser, id)
		}
		u = copyUser(r)
		return nil
	})
	return u, err
}

func (db *DB) LoadUser(ctx context.Context, id int64) (domain.User, bool, error) {
	var (
		u  domain.User
		ok bool
	)
	err := db.do(ctx, "LoadUser", func(s *state) error {
		u, ok = s.users.get(id)
		u = copyUser(u)
		return nil
	})
	return u, ok && err == nil, err
}

func (db *DB) UserByEmail(ctx context.Context, email string) (domain.User, bool, error) {
	var (
		u  domain.User
		ok bool
	)
	err := db.do(ctx, "UserByEmail", func(s *state) error {
		var id int64
		if id, ok = s.emails[domain.EmailKey(email)]; ok {
			u = copyUser(s.users.rows[id])
		}
		return nil
	})
	return u, ok && err == nil, err
}

func emailTaken() error {
	return domain.Errorf(domain.KindConflict, "a user with this email already exists")
}

// setUser stores u (fitted, with its email key) and keeps the email index.
func (s *state) setUser(u domain.User, key string) {
	s.unindexEmail(u.ID)
	s.users.set(u.ID, u)
	if !u.Deleted() {
		s.emails[key] = u.ID
	}
}

// unindexEmail drops the index entry of user id, if it holds one.
func (s *state) unindexEmail(id int64) {
	if old, ok := s.users.get(id); ok && !old.Deleted() {
		if k := domain.EmailKey(old.Email); s.emails[k] == id {
			delete(s.emails, k)
		}
	}
}

// CreateUser returns the user as computed, as the adapter does.
func (db *DB) CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error) {
	now := db.clock()
	u := c.ApplyAt(domain.User{}, now)
	u.CreatedAt, u.UpdatedAt = now, now
	u.Ver, _ = u.Ver.Next(db.primary(), db.floor, u.Jump)
	err := db.do(ctx, "CreateUser", func(s *state) error {
		u.ID = s.nextval(domain.EntityUser) // spent even if the insert fails
		q, key, err := fitUser(u)
		if err != nil {
			return err
		}
		if _, ok := s.users.get(q.ID); ok {
			return domain.Errorf(domain.KindConflict, "the row conflicts with an existing one")
		}
		if _, ok := s.emails[key]; ok {
			return emailTaken()
		}
		s.setUser(q, key)
		s.insertOutbox(domain.EntityUser, q.ID, store.Own(db.role, q.Ver), now)
		return nil
	})
	if err != nil {
		return domain.User{}, err
	}
	return u, nil
}

func (db *DB) UpdateUser(ctx context.Context, id int64, c domain.UserChange) (domain.User, error) {
	var u domain.User
	err := db.do(ctx, "UpdateUser", func(s *state) error {
		prev, ok := s.users.get(id)
		if !ok || prev.Deleted() {
			return notFound(domain.EntityUser, id)
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		u = c.ApplyAt(prev, v)
		u.UpdatedAt = v
		u.Ver, u.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		q, key, err := fitUser(u)
		if err != nil {
			return err
		}
		if owner, ok := s.emails[key]; ok && owner != id {
			return emailTaken()
		}
		s.setUser(q, key)
		s.insertOutbox(domain.EntityUser, id, store.Own(db.role, q.Ver), db.clock())
		return nil
	})
	if err != nil {
		return domain.User{}, err
	}
	return u, nil
}

func (db *DB) DeleteUser(ctx context.Context, id int64) error {
	return db.do(ctx, "DeleteUser", func(s *state) error {
		prev, ok := s.users.get(id)
		if !ok || prev.Deleted() {
			return notFound(domain.EntityUser, id)
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		u := prev
		u.DeletedAt, u.UpdatedAt = &v, v
		u.Ver, u.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		s.setUser(u, "")
		s.insertOutbox(domain.EntityUser, id, store.Own(db.role, u.Ver), db.clock())
		return nil
	})
}

// PutUser is a compare-and-set sync write; an email key a live user holds
// is a Conflict and nothing changes.
func (db *DB) PutUser(ctx context.Context, u domain.User, expect *domain.Vector) (store.PutResult, error) {
	res, err := db.PutUsers(ctx, []store.UserPut{{User: u, Expect: expect}})
	if err != nil {
		return "", err
	}
	return res[0], nil
}

// PutUsers writes all puts or none. The adapter checks every expectation
// (in id order) before any write, then writes the puts in order with the
// batch's existing rows' email keys parked, so an email may move or swap
// among them; each write fails on a key that a row outside the batch, or a
// put written before it, holds live. The checks here are the same, in the
// same order, so the first failure is the adapter's.
func (db *DB) PutUsers(ctx context.Context, puts []store.UserPut) ([]store.PutResult, error) {
	if err := store.CheckUserPuts(puts); err != nil {
		return nil, err
	}
	res := make([]store.PutResult, len(puts))
	err := db.do(ctx, "PutUsers", func(s *state) error {
		curs := make([]domain.User, len(puts))
		exists := make([]bool, len(puts))
		inBatch := make(map[int64]bool, len(puts))
		for _, i := range store.LockOrder(puts) {
			p := puts[i]
			curs[i], exists[i] = s.users.get(p.User.ID)
			if err := lockForPut(curs[i].Ver, exists[i], "users", p.User.ID, p.Expect); err != nil {
				return err
			}
			res[i] = putResult(exists[i], exists[i] && !curs[i].Deleted(), p.User.Deleted())
			inBatch[p.User.ID] = true
		}
		rows := make([]domain.User, len(puts))
		keys := make([]string, len(puts))
		written := map[string]bool{} // live keys of the puts written so far
		for i, p := range puts {
			u, key, err := fitUser(truncUser(p.User))
			if err != nil {
				return err
			}
			if !u.Deleted() {
				// A batch row still to be written holds a parked key.
				if owner, ok := s.emails[key]; (ok && !inBatch[owner]) || written[key] {
					return emailTaken()
				}
				written[key] = true
			}
			u.Jump = domain.Jump{} // local: an update keeps the row's, an insert has none
			if exists[i] {
				u.Jump = curs[i].Jump
			}
			rows[i], keys[i] = u, key
		}
		for _, p := range puts {
			s.unindexEmail(p.User.ID)
		}
		for i, u := range rows {
			s.setUser(u, keys[i])
			if !exists[i] {
				s.advance(db.role, domain.EntityUser, u.ID)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func truncUser(u domain.User) domain.User {
	u.CreatedAt, u.UpdatedAt, u.DeletedAt = domain.Millis(u.CreatedAt), domain.Millis(u.UpdatedAt), millisPtr(u.DeletedAt)
	u.NameAt, u.EmailAt = domain.Millis(u.NameAt), domain.Millis(u.EmailAt)
	return u
}
