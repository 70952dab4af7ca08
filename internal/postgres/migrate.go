package postgres

import (
	"context"
	"embed"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrateLock is the advisory lock key that serialises concurrent Migrate
// calls (several handler instances may start at once).
const migrateLock = 0x6475616c73796e63 // "dualsync"

// idStart is the first id of the role's sequences: odd on the primary, even
// on the fallback. It is substituted into migrations as {{id_start}}; being a
// constant of ours, not input, it is safe in DDL (which takes no parameters).
func idStart(r store.Role) int64 {
	if r == store.RoleFallback {
		return 2
	}
	return 1
}

// ownVer is the column of the role's own vector entry, substituted into
// migrations as {{own_ver}} (a constant of ours, safe in SQL).
func ownVer(r store.Role) string {
	if r == store.RoleFallback {
		return "ver_f"
	}
	return "ver_p"
}

// Migrate applies the embedded migrations not yet recorded in
// schema_migrations, in name order, in one transaction under an advisory
// lock. Each runs once, so a sequence is created (with its role's start) once
// and never reset.
func (db *DB) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return domain.Wrap(domain.KindInternal, err, "postgres: list migrations")
	}
	sort.Strings(names)
	return db.inTx(ctx, "migrate", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(migrateLock)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return err
		}
		for _, name := range names {
			version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
			var done bool
			if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)", version).Scan(&done); err != nil {
				return err
			}
			if done {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			sql := strings.NewReplacer("{{id_start}}", strconv.FormatInt(idStart(db.role), 10), "{{own_ver}}", ownVer(db.role)).Replace(string(body))
			// No arguments: pgx sends it with the simple protocol, which
			// allows several statements.
			if _, err := tx.Exec(ctx, sql); err != nil {
				return domain.Wrap(domain.KindInternal, err, "postgres: migration "+version+" failed")
			}
			if step := afterMigration[version]; step != nil {
				if err := step(ctx, tx); err != nil {
					return domain.Wrap(domain.KindInternal, err, "postgres: migration "+version+" failed")
				}
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version) VALUES ($1)", version); err != nil {
				return err
			}
		}
		if err := db.checkParity(ctx, tx); err != nil {
			return err
		}
		// A restored or rebuilt database may hold ids of its own parity past
		// its sequence (rows synced back from the other side).
		for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
			if err := db.advanceSequence(ctx, tx, e, 0); err != nil {
				return err
			}
		}
		return nil
	})
}

// afterMigration holds steps written in Go that complete a migration in the
// same transaction.
var afterMigration = map[string]func(context.Context, pgx.Tx) error{
	"002_versions": fillEmailKeys,
}

// fillEmailKeys computes domain.EmailKey for existing users (in Go: the same
// function as every write, in both adapters), then makes the key required
// and unique among live users.
func fillEmailKeys(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, "SELECT id, email FROM users WHERE email_key IS NULL")
	if err != nil {
		return err
	}
	type row struct {
		id    int64
		email string
	}
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.email); err != nil {
			rows.Close()
			return err
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, r := range todo {
		if _, err := tx.Exec(ctx, "UPDATE users SET email_key = $2 WHERE id = $1", r.id, domain.EmailKey(r.email)); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, "ALTER TABLE users ALTER COLUMN email_key SET NOT NULL"); err != nil {
		return err
	}
	// Fails, naming the key, if two live users' emails differ only in ways
	// the key ignores (e.g. full-width letters): a person must decide.
	_, err = tx.Exec(ctx, "CREATE UNIQUE INDEX IF NOT EXISTS users_email_live ON users (email_key) WHERE deleted_at IS NULL")
	return err
}

// checkParity refuses a database whose sequences were created for the other
// role: its ids would collide with the other database's.
func (db *DB) checkParity(ctx context.Context, tx pgx.Tx) error {
	for _, seq := range []string{"products_id_seq", "users_id_seq"} {
		var start, inc int64
		err := tx.QueryRow(ctx, `SELECT start_value, increment_by FROM pg_sequences
			WHERE schemaname = current_schema() AND sequencename = $1`, seq).Scan(&start, &inc)
		if err != nil {
			return err
		}
		if inc != 2 || start%2 != idStart(db.role)%2 {
			return domain.Errorf(domain.KindInternal,
				"postgres: sequence %s (start %d, increment %d) was created for the other role, but this database is opened as %s",
				seq, start, inc, db.role)
		}
	}
	return nil
}
