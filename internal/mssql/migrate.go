package mssql

import (
	"bufio"
	"context"
	"database/sql"
	"embed"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// idStart is the first id of the role's sequences: odd on the primary, even
// on the fallback. It is substituted into migrations as {{id_start}}; being a
// constant of ours, not input, it is safe in DDL (which takes no parameters).
func idStart(r store.Role) int64 {
	if r == store.RoleFallback {
		return 2
	}
	return 1
}

// Batches splits a T-SQL script on lines holding only GO, as sqlcmd does;
// the server itself does not know GO.
func Batches(script string) []string {
	var (
		out []string
		cur strings.Builder
	)
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(strings.NewReader(script))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.EqualFold(strings.TrimSpace(line), "GO") {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return out
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
// schema_migrations, in name order, in one transaction under an application
// lock (sp_getapplock) so concurrent callers wait for each other. Each runs
// once, so a sequence is created (with its role's start) once, never reset.
func (db *DB) Migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return domain.Wrap(domain.KindInternal, err, "sqlserver: list migrations")
	}
	sort.Strings(names)
	return db.inTx(ctx, "migrate", func(tx *sql.Tx) error {
		var got int
		if err := tx.QueryRowContext(ctx, `DECLARE @r INT;
			EXEC @r = sp_getapplock @Resource = N'dualsync-migrate', @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 60000;
			SELECT @r;`).Scan(&got); err != nil {
			return err
		}
		if got == -3 {
			return errMigrateLockDeadlock // retried by inTx, as 1205 is
		}
		if got < 0 {
			return domain.Errorf(domain.KindUnavailable, "sqlserver: migration lock not granted (%d)", got)
		}
		if err := checkCompatibility(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `IF OBJECT_ID(N'dbo.schema_migrations', N'U') IS NULL
			CREATE TABLE dbo.schema_migrations (
				version NVARCHAR(100) NOT NULL CONSTRAINT schema_migrations_pk PRIMARY KEY,
				applied_at DATETIME2(3) NOT NULL CONSTRAINT schema_migrations_applied_df DEFAULT SYSUTCDATETIME())`); err != nil {
			return err
		}
		for _, name := range names {
			version := strings.TrimSuffix(strings.TrimPrefix(name, "migrations/"), ".sql")
			var done int
			if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM dbo.schema_migrations WHERE version = CAST(@p1 AS NVARCHAR(4000))", str(version)).Scan(&done); err != nil {
				return err
			}
			if done > 0 {
				continue
			}
			body, err := migrations.ReadFile(name)
			if err != nil {
				return err
			}
			script := strings.NewReplacer("{{id_start}}", strconv.FormatInt(idStart(db.role), 10), "{{own_ver}}", ownVer(db.role)).Replace(string(body))
			for i, batch := range Batches(script) {
				// No arguments: sent as a plain batch, not sp_executesql.
				if _, err := tx.ExecContext(ctx, batch); err != nil {
					return domain.Wrap(domain.KindInternal, err, "sqlserver: migration "+version+" batch "+strconv.Itoa(i+1)+" failed")
				}
			}
			if step := afterMigration[version]; step != nil {
				if err := step(ctx, tx); err != nil {
					return domain.Wrap(domain.KindInternal, err, "sqlserver: migration "+version+" failed")
				}
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO dbo.schema_migrations (version) VALUES (@p1)", str(version)); err != nil {
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
var afterMigration = map[string]func(context.Context, *sql.Tx) error{
	"002_versions": fillEmailKeys,
}

// fillEmailKeys computes domain.EmailKey for existing users (in Go: the same
// function as every write, in both adapters), then makes the key required
// and unique among live users, compared byte for byte.
func fillEmailKeys(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, "SELECT id, email FROM dbo.users WHERE email_key IS NULL")
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
		if _, err := tx.ExecContext(ctx, "UPDATE dbo.users SET email_key = @p2 WHERE id = @p1", r.id, str(domain.EmailKey(r.email))); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, "ALTER TABLE dbo.users ALTER COLUMN email_key NVARCHAR(254) COLLATE Latin1_General_100_BIN2 NOT NULL"); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, "CREATE UNIQUE INDEX users_email_live ON dbo.users (email_key) WHERE deleted_at IS NULL")
	return err
}

// checkParity refuses a database whose sequences were created for the other
// role: its ids would collide with the other database's.
func (db *DB) checkParity(ctx context.Context, tx *sql.Tx) error {
	for _, seq := range []string{"products_id_seq", "users_id_seq"} {
		var start, inc int64
		err := tx.QueryRowContext(ctx, `SELECT CAST(start_value AS BIGINT), CAST(increment AS BIGINT) FROM sys.sequences
			WHERE name = CAST(@p1 AS NVARCHAR(128)) AND schema_id = SCHEMA_ID(N'dbo')`, str(seq)).Scan(&start, &inc)
		if err != nil {
			return err
		}
		if inc != 2 || start%2 != idStart(db.role)%2 {
			return domain.Errorf(domain.KindInternal,
				"sqlserver: sequence %s (start %d, increment %d) was created for the other role, but this database is opened as %s",
				seq, start, inc, db.role)
		}
	}
	return nil
}

// minCompatibility is the lowest database compatibility level the adapter
// runs on: OPENJSON, which reads every list it sends, needs 130
// (https://learn.microsoft.com/sql/t-sql/functions/openjson-transact-sql).
// Azure SQL Database creates databases at 160 or above.
const minCompatibility = 130

// checkCompatibility refuses, with a clear message, a database whose
// compatibility level is too low, rather than fail on the first list.
func checkCompatibility(ctx context.Context, tx *sql.Tx) error {
	var level int
	if err := tx.QueryRowContext(ctx, "SELECT CAST(compatibility_level AS INT) FROM sys.databases WHERE database_id = DB_ID()").Scan(&level); err != nil {
		return err
	}
	if level < minCompatibility {
		return domain.Errorf(domain.KindInternal,
			"sqlserver: database compatibility level %d is below %d, which OPENJSON needs: ALTER DATABASE CURRENT SET COMPATIBILITY_LEVEL = %d (or higher)",
			level, minCompatibility, minCompatibility)
	}
	return nil
}
