package mssql

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	mssqldb "github.com/microsoft/go-mssqldb"

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

// marksJSON reads the outbox marks of the JSON array @p2
// ([{"id":..,"upTo":..}, ...]) as m: one text for any number of marks.
const marksJSON = `OPENJSON(@p2) WITH (id BIGINT '$.id', up_to BIGINT '$.upTo') AS m`

// The marks statements seek outbox_entity (entity, entity_id, counter) per
// mark, OPENJSON outer, as the batch writes do: a scan plan would lock every
// outbox row it reads and deadlock with another instance's marks.
const markOutboxSentSQL = `UPDATE o SET sent_at = @p3
FROM ` + marksJSON + `
INNER LOOP JOIN dbo.outbox AS o WITH (FORCESEEK) ON o.entity = CAST(@p1 AS NVARCHAR(4000)) AND o.entity_id = m.id AND o.counter <= m.up_to`

const ackOutboxSQL = `DELETE o FROM ` + marksJSON + `
INNER LOOP JOIN dbo.outbox AS o WITH (FORCESEEK) ON o.entity = CAST(@p1 AS NVARCHAR(4000)) AND o.entity_id = m.id AND o.counter <= m.up_to`

type markRow struct {
	ID   int64 `json:"id"`
	UpTo int64 `json:"upTo"`
}

// marksParam lists marks by ascending id, so concurrent statements tend to
// touch the outbox's rows in one order.
func marksParam(marks []store.OutboxMark) mssqldb.NVarCharMax {
	sorted := slices.SortedFunc(slices.Values(marks), func(a, b store.OutboxMark) int { return cmp.Compare(a.ID, b.ID) })
	rows := make([]markRow, len(sorted))
	for i, m := range sorted {
		rows[i] = markRow{ID: m.ID, UpTo: m.UpTo}
	}
	return jsonParam(rows)
}

// overMarks runs one marks statement (@p1 entity, @p2 marks, then extra),
// once more if chosen as a deadlock victim. Whether a failed statement
// applied is unknown, so errors are not reported as unreached.
func (db *DB) overMarks(ctx context.Context, what, stmt string, e domain.Entity, marks []store.OutboxMark, extra ...any) error {
	if len(marks) == 0 {
		return nil
	}
	args := append([]any{str(string(e)), marksParam(marks)}, extra...)
	err := retryDeadlock(ctx, func() error {
		_, err := db.db.ExecContext(ctx, stmt, args...)
		return err
	})
	return classify(err, what, false)
}

func (db *DB) MarkOutboxSent(ctx context.Context, e domain.Entity, marks []store.OutboxMark, at time.Time) error {
	return db.overMarks(ctx, "mark outbox sent", markOutboxSentSQL, e, marks, dt(at))
}

func (db *DB) AckOutbox(ctx context.Context, e domain.Entity, marks []store.OutboxMark) error {
	return db.overMarks(ctx, "ack outbox", ackOutboxSQL, e, marks)
}

func (db *DB) OutboxDepth(ctx context.Context) (int64, error) {
	var n int64
	if err := db.db.QueryRowContext(ctx, "SELECT COUNT_BIG(*) FROM dbo.outbox").Scan(&n); err != nil {
		return 0, classify(err, "outbox depth", true)
	}
	return n, nil
}
