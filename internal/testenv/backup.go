package testenv

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Backup is a PostgreSQL database's data at one instant: every table's rows
// (COPY, as pg_dump writes them) and every sequence's position, read in one
// repeatable-read transaction, so that a restore puts the database back in
// time exactly as a point-in-time restore would.
type Backup struct {
	tables    []string
	data      map[string][]byte
	sequences map[string]sequence
}

type sequence struct {
	last   int64
	called bool
}

// TakeBackup reads the database at url (every table of its schema but
// schema_migrations, whose rows a restore of the same schema keeps).
func TakeBackup(t testing.TB, url string) *Backup {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("testenv: backup: %v", err)
	}
	defer conn.Close(ctx)
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatalf("testenv: backup: %v", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // read-only
	b := &Backup{data: map[string][]byte{}, sequences: map[string]sequence{}}
	rows, err := tx.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_migrations' ORDER BY tablename`)
	if err != nil {
		t.Fatalf("testenv: backup: %v", err)
	}
	if b.tables, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatalf("testenv: backup: %v", err)
	}
	for _, name := range b.tables {
		var buf bytes.Buffer
		if _, err := tx.Conn().PgConn().CopyTo(ctx, &buf, "COPY "+pgx.Identifier{name}.Sanitize()+" TO STDOUT"); err != nil {
			t.Fatalf("testenv: backup %s: %v", name, err)
		}
		b.data[name] = buf.Bytes()
	}
	rows, err = tx.Query(ctx, `SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()`)
	if err != nil {
		t.Fatalf("testenv: backup: %v", err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("testenv: backup: %v", err)
	}
	for _, name := range seqs {
		var s sequence
		if err := tx.QueryRow(ctx, "SELECT last_value, is_called FROM "+pgx.Identifier{name}.Sanitize()).Scan(&s.last, &s.called); err != nil {
			t.Fatalf("testenv: backup %s: %v", name, err)
		}
		b.sequences[name] = s
	}
	return b
}

// Restore puts the database at url back to the backup, in one transaction:
// rows written since are gone, rows deleted since are back, and sequences
// are where they were.
func (b *Backup) Restore(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("testenv: restore: %v", err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, name := range b.tables {
			if _, err := tx.Exec(ctx, "TRUNCATE "+pgx.Identifier{name}.Sanitize()); err != nil {
				return err
			}
			if _, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(b.data[name]), "COPY "+pgx.Identifier{name}.Sanitize()+" FROM STDIN"); err != nil {
				return err
			}
		}
		for name, s := range b.sequences {
			if _, err := tx.Exec(ctx, "SELECT setval($1::regclass, $2, $3)", pgx.Identifier{name}.Sanitize(), s.last, s.called); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: restore: %v", err)
	}
}

// Rebuild empties every table of the database at url and sets its
// sequences back to their start, as a database created anew and migrated:
// the schema stays.
func Rebuild(t testing.TB, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("testenv: rebuild: %v", err)
	}
	defer conn.Close(ctx)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`)
		if err != nil {
			return err
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, name := range tables {
			if _, err := tx.Exec(ctx, "TRUNCATE "+pgx.Identifier{name}.Sanitize()); err != nil {
				return err
			}
		}
		rows, err = tx.Query(ctx, `SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()`)
		if err != nil {
			return err
		}
		seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, name := range seqs {
			if _, err := tx.Exec(ctx, "ALTER SEQUENCE "+pgx.Identifier{name}.Sanitize()+" RESTART"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testenv: rebuild: %v", err)
	}
}
