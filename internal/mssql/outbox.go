package mssql

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// table maps an entity to its table; the name never comes from a client.
func table(e domain.Entity) (string, error) {
	switch e {
	case domain.EntityProduct:
		return "dbo.products", nil
	case domain.EntityUser:
		return "dbo.users", nil
	}
	return "", domain.Errorf(domain.KindInvalid, "unknown entity %q", e)
}

func (db *DB) IDs(ctx context.Context, e domain.Entity, after int64, limit int) ([]int64, error) {
	t, err := table(e)
	if err != nil {
		return nil, err
	}
	return queryList(ctx, db.db, "list ids", "SELECT TOP (@p2) id FROM "+t+" WHERE id > @p1 ORDER BY id",
		func(s scanner) (int64, error) {
			var id int64
			return id, s.Scan(&id)
		}, after, limitOf(limit))
}

func scanOutbox(s scanner) (store.OutboxEntry, error) {
	var (
		e      store.OutboxEntry
		entity string
		sent   sql.NullTime
	)
	if err := s.Scan(&e.Seq, &entity, &e.ID, &e.Counter, &e.CreatedAt, &sent); err != nil {
		return e, err
	}
	e.Entity = domain.Entity(entity)
	e.CreatedAt, e.SentAt = utc(e.CreatedAt), nullTime(sent)
	return e, nil
}

func (db *DB) PendingOutbox(ctx context.Context, notSentBefore, resendBefore time.Time, limit int) ([]store.OutboxEntry, error) {
	return queryList(ctx, db.db, "pending outbox", `SELECT TOP (@p3) seq, entity, entity_id, counter, created_at, sent_at FROM dbo.outbox
		WHERE (sent_at IS NULL AND created_at < @p1) OR (sent_at IS NOT NULL AND sent_at < @p2)
		ORDER BY seq`, scanOutbox, dt(notSentBefore), dt(resendBefore), limitOf(limit))
}

// stmtChunk bounds the items one statement names as parameters (one or two
// each), far below SQL Server's 2,100.
const stmtChunk = 500

// overMarks runs stmt once per chunk of marks (ascending ids, so that
// concurrent statements lock rows in one order). The statement's
// parameters are the entity (@p1), then lead, then the chunk's ids and
// counters, which stmt gets as a VALUES list naming them.
func (db *DB) overMarks(ctx context.Context, what string, e domain.Entity, lead []any, marks []store.OutboxMark, stmt func(values string) string) error {
	marks = slices.SortedFunc(slices.Values(marks), func(a, b store.OutboxMark) int { return cmp.Compare(a.ID, b.ID) })
	for chunk := range slices.Chunk(marks, stmtChunk) {
		var (
			values strings.Builder
			args   = append([]any{string(e)}, lead...)
		)
		for i, m := range chunk {
			if i > 0 {
				values.WriteString(", ")
			}
			fmt.Fprintf(&values, "(@p%d, @p%d)", len(args)+1, len(args)+2)
			args = append(args, m.ID, m.UpTo)
		}
		err := retryDeadlock(ctx, func() error {
			_, err := db.db.ExecContext(ctx, stmt(values.String()), args...)
			return err
		})
		if err != nil {
			return classify(err, what, false)
		}
	}
	return nil
}

func (db *DB) MarkOutboxSent(ctx context.Context, e domain.Entity, marks []store.OutboxMark, at time.Time) error {
	return db.overMarks(ctx, "mark outbox sent", e, []any{dt(at)}, marks, func(values string) string {
		return `UPDATE o SET sent_at = @p2
			FROM dbo.outbox AS o JOIN (VALUES ` + values + `) AS m(id, up_to)
			ON o.entity_id = m.id AND o.counter <= m.up_to
			WHERE o.entity = @p1`
	})
}

func (db *DB) AckOutbox(ctx context.Context, e domain.Entity, marks []store.OutboxMark) error {
	return db.overMarks(ctx, "ack outbox", e, nil, marks, func(values string) string {
		return `DELETE o FROM dbo.outbox AS o JOIN (VALUES ` + values + `) AS m(id, up_to)
			ON o.entity_id = m.id AND o.counter <= m.up_to
			WHERE o.entity = @p1`
	})
}

func (db *DB) OutboxDepth(ctx context.Context) (int64, error) {
	var n int64
	if err := db.db.QueryRowContext(ctx, "SELECT COUNT_BIG(*) FROM dbo.outbox").Scan(&n); err != nil {
		return 0, classify(err, "outbox depth", true)
	}
	return n, nil
}
