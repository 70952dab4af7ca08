package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

const userCols = "id, name, email, created_at, updated_at, deleted_at"

func scanUser(row pgx.Row) (domain.User, error) {
	var (
		u       domain.User
		deleted *time.Time
	)
	if err := row.Scan(&u.ID, &u.Name, &u.Email, &u.CreatedAt, &u.UpdatedAt, &deleted); err != nil {
		return u, err
	}
	u.CreatedAt, u.UpdatedAt, u.DeletedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC(), utcPtr(deleted)
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
	u := c.Apply(domain.User{})
	now := db.clock()
	u.CreatedAt, u.UpdatedAt = now, now
	err := db.inTx(ctx, "create user", func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO users (id, name, email, created_at, updated_at)
			VALUES (nextval('users_id_seq'), $1, $2, $3, $3) RETURNING id`, u.Name, u.Email, now).Scan(&u.ID)
		if err != nil {
			return classify(err, "create user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, u.ID, now, now)
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
		u = c.Apply(prev)
		u.UpdatedAt = domain.NextVersion(db.now(), prev.UpdatedAt)
		if _, err := tx.Exec(ctx, "UPDATE users SET name = $2, email = $3, updated_at = $4 WHERE id = $1",
			id, u.Name, u.Email, u.UpdatedAt); err != nil {
			return classify(err, "update user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, id, u.UpdatedAt, db.clock())
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
		if _, err := tx.Exec(ctx, "UPDATE users SET deleted_at = $2, updated_at = $2 WHERE id = $1", id, v); err != nil {
			return classify(err, "delete user", true)
		}
		return insertOutbox(ctx, tx, domain.EntityUser, id, v, db.clock())
	})
}

func (db *DB) PutUser(ctx context.Context, u domain.User, overwriteTie bool) (store.PutResult, error) {
	u.CreatedAt, u.UpdatedAt, u.DeletedAt = domain.Millis(u.CreatedAt), domain.Millis(u.UpdatedAt), millisPtr(u.DeletedAt)
	var res store.PutResult
	err := db.inTx(ctx, "put user", func(tx pgx.Tx) error {
		for {
			var (
				updated time.Time
				deleted *time.Time
			)
			err := tx.QueryRow(ctx, "SELECT updated_at, deleted_at FROM users WHERE id = $1 FOR UPDATE", u.ID).Scan(&updated, &deleted)
			exists := err == nil
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return classify(err, "put user", true)
			}
			res = putOutcome(exists, updated, deleted != nil, u.UpdatedAt, u.Deleted(), overwriteTie)
			switch res {
			case store.PutUnchanged:
				return nil
			case store.PutCreated:
				// A duplicate live email fails the statement (Conflict) and the
				// transaction rolls back: nothing changes.
				tag, err := tx.Exec(ctx, `INSERT INTO users (id, name, email, created_at, updated_at, deleted_at)
					VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
					u.ID, u.Name, u.Email, u.CreatedAt, u.UpdatedAt, u.DeletedAt)
				if err != nil {
					return classify(err, "put user", true)
				}
				if tag.RowsAffected() == 0 {
					continue
				}
				return nil
			default:
				_, err := tx.Exec(ctx, `UPDATE users SET name = $2, email = $3, created_at = $4, updated_at = $5, deleted_at = $6 WHERE id = $1`,
					u.ID, u.Name, u.Email, u.CreatedAt, u.UpdatedAt, u.DeletedAt)
				return classify(err, "put user", true)
			}
		}
	})
	if err != nil {
		return "", err
	}
	return res, nil
}
