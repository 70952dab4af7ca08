package postgres

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

const userCols = "id, name, email, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, email_at, jump_from, jump_to"

func scanUser(row pgx.Row) (domain.User, error) {
	var (
		u       domain.User
		deleted *time.Time
	)
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt, &u.UpdatedAt, &deleted, &u.Ver.P, &u.Ver.F, &u.NameAt, &u.EmailAt, &u.Jump.From, &u.Jump.To); err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt, u.DeletedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC(), utcPtr(deleted)
	u.NameAt, u.EmailAt = u.NameAt.UTC(), u.EmailAt.UTC()
	return u, nil
}

func (db *DB) ListUsers(ctx context.Context, p store.Page) ([]domain.User, error) {
	rows, err := db.pool.Query(ctx, "SELECT "+userCols+" FROM users WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2", p.After, limitOf(p.Limit))
	if err != nil {
		return nil, classify(err, "list users", true)
	}
	defer rows.Close()
	out := []domain.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, classify(err, "list users", true)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "list users", true)
	}
	return out, nil
}

func (db *DB) GetUser(ctx context.Context, id int64) (domain.User, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = $1 AND deleted_at IS NULL", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, notFound(domain.EntityUser, id)
	}
	return u, classify(err, "get user", true)
}

func (db *DB) LoadUser(ctx context.Context, id int64) (domain.User, bool, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	if err != nil {
		return u, false, classify(err, "load user", true)
	}
	return u, true, nil
}

func (db *DB) CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error) {
	now := db.clock()
	u := c.ApplyAt(domain.User{}, now)
	u.CreatedAt, u.UpdatedAt = now, now
	u.Ver, _ = u.Ver.Next(db.primary(), db.floor, u.Jump)
	err := db.inTx(ctx, "create user", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO users (id, name, email, email_key, created_at, updated_at, ver_p, ver_f, name_at, email_at)
			VALUES (nextval('users_id_seq'), $1, $2, $3, $4, $4, $5, $6, $4, $4) RETURNING id`,
			u.Name, u.Email, domain.EmailKey(u.Email), now, u.Ver.P, u.Ver.F).Scan(&u.ID)
		if err != nil {
			return classify(err, "create user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, u.ID, store.Own(db.role, u.Ver), now)
	})
	if err != nil {
		return domain.User{}, err
	}
	return u, nil
}

func (db *DB) lockLiveUser(ctx context.Context, tx pgx.Tx, id int64) (domain.User, error) {
	u, err := scanUser(tx.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE id = $1 AND deleted_at IS NULL FOR UPDATE", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, notFound(domain.EntityUser, id)
	}
	return u, classify(err, "lock user", true)
}

func (db *DB) UpdateUser(ctx context.Context, id int64, c domain.UserChange) (domain.User, error) {
	var u domain.User
	err := db.inTx(ctx, "update user", func(tx pgx.Tx) error {
		prev, err := db.lockLiveUser(ctx, tx, id)
		if err != nil {
			return err
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		u = c.ApplyAt(prev, v)
		u.UpdatedAt = v
		u.Ver, u.Jump = prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		if _, err := tx.Exec(ctx, `UPDATE users SET name = $2, email = $3, email_key = $4, updated_at = $5,
			ver_p = $6, ver_f = $7, name_at = $8, email_at = $9, jump_from = $10, jump_to = $11 WHERE id = $1`,
			id, u.Name, u.Email, domain.EmailKey(u.Email), u.UpdatedAt, u.Ver.P, u.Ver.F, u.NameAt, u.EmailAt, u.Jump.From, u.Jump.To); err != nil {
			return classify(err, "update user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, id, store.Own(db.role, u.Ver), db.clock())
	})
	if err != nil {
		return domain.User{}, err
	}
	return u, nil
}

func (db *DB) DeleteUser(ctx context.Context, id int64) error {
	return db.inTx(ctx, "delete user", func(tx pgx.Tx) error {
		prev, err := db.lockLiveUser(ctx, tx, id)
		if err != nil {
			return err
		}
		v := domain.NextVersion(db.now(), prev.UpdatedAt)
		ver, jump := prev.Ver.Next(db.primary(), db.floor, prev.Jump)
		if _, err := tx.Exec(ctx, "UPDATE users SET deleted_at = $2, updated_at = $2, ver_p = $3, ver_f = $4, jump_from = $5, jump_to = $6 WHERE id = $1",
			id, v, ver.P, ver.F, jump.From, jump.To); err != nil {
			return classify(err, "delete user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, id, store.Own(db.role, ver), db.clock())
	})
}

// PutUser is a compare-and-set sync write; a duplicate live email key fails
// the statement (Conflict) and the transaction rolls back: nothing changes.
func (db *DB) PutUser(ctx context.Context, u domain.User, expect *domain.Vector) (store.PutResult, error) {
	res, err := db.PutUsers(ctx, []store.UserPut{{User: u, Expect: expect}})
	if err != nil {
		return "", err
	}
	return res[0], nil
}

// emailParking is an email key no real email has (no @): rows of a joint
// put park their key there first, so a swap does not trip the unique index
// on its way (PostgreSQL checks it per statement, not at commit).
func emailParking(id int64) string { return "#" + strconv.FormatInt(id, 10) }

func (db *DB) PutUsers(ctx context.Context, puts []store.UserPut) ([]store.PutResult, error) {
	if err := store.CheckUserPuts(puts); err != nil {
		return nil, err
	}
	res := make([]store.PutResult, len(puts))
	err := db.inTx(ctx, "put user", func(tx pgx.Tx) error {
		exists := make([]bool, len(puts))
		for _, i := range store.LockOrder(puts) {
			p := puts[i]
			ex, live, err := lockForPut(ctx, tx, "users", p.User.ID, p.Expect)
			if err != nil {
				return err
			}
			exists[i], res[i] = ex, putResult(ex, live, p.User.Deleted())
		}
		if len(puts) > 1 {
			for i, p := range puts {
				if exists[i] {
					if _, err := tx.Exec(ctx, "UPDATE users SET email_key = $2 WHERE id = $1", p.User.ID, emailParking(p.User.ID)); err != nil {
						return classify(err, "put user", true)
					}
				}
			}
		}
		for i, p := range puts {
			u := p.User
			u.CreatedAt, u.UpdatedAt, u.DeletedAt = domain.Millis(u.CreatedAt), domain.Millis(u.UpdatedAt), millisPtr(u.DeletedAt)
			u.NameAt, u.EmailAt = domain.Millis(u.NameAt), domain.Millis(u.EmailAt)
			args := []any{u.ID, u.Name, u.Email, domain.EmailKey(u.Email), u.CreatedAt, u.UpdatedAt, u.DeletedAt, u.Ver.P, u.Ver.F, u.NameAt, u.EmailAt}
			if exists[i] {
				if _, err := tx.Exec(ctx, `UPDATE users SET name = $2, email = $3, email_key = $4, created_at = $5, updated_at = $6, deleted_at = $7,
					ver_p = $8, ver_f = $9, name_at = $10, email_at = $11 WHERE id = $1`, args...); err != nil {
					return classify(err, "put user", true)
				}
				continue
			}
			tag, err := tx.Exec(ctx, `INSERT INTO users (id, name, email, email_key, created_at, updated_at, deleted_at, ver_p, ver_f, name_at, email_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING`, args...)
			if err != nil {
				return classify(err, "put user", true)
			}
			if tag.RowsAffected() == 0 {
				return changed("users", u.ID)
			}
			if err := db.advanceSequence(ctx, tx, domain.EntityUser, u.ID); err != nil {
				return classify(err, "put user", true)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (db *DB) UserByEmail(ctx context.Context, email string) (domain.User, bool, error) {
	u, err := scanUser(db.pool.QueryRow(ctx, "SELECT "+userCols+" FROM users WHERE email_key = $1 AND deleted_at IS NULL", domain.EmailKey(email)))
	if errors.Is(err, pgx.ErrNoRows) {
		return u, false, nil
	}
	if err != nil {
		return u, false, classify(err, "user by email", true)
	}
	return u, true, nil
}
