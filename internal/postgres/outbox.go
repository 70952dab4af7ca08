package postgres

import (
	"context"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// table maps an entity to its table; the name never comes from a client.
func table(e domain.Entity) (string, error) {
	switch e {
	case domain.EntityProduct:
		return "products", nil
	case domain.EntityUser:
		return "users", nil
	}
	return "", domain.Errorf(domain.KindInvalid, "unknown entity %q", e)
}

func (db *DB) IDs(ctx context.Context, e domain.Entity, after int64, limit int) ([]int64, error) {
	t, err := table(e)
	if err != nil {
		return nil, err
	}
	rows, err := db.pool.Query(ctx, "SELECT id FROM "+t+" WHERE id > $1 ORDER BY id LIMIT $2", after, limitOf(limit))
	if err != nil {
		return nil, classify(err, "list ids", true)
	}
	defer rows.Close()
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, classify(err, "list ids", true)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "list ids", true)
	}
	return ids, nil
}

func (db *DB) PendingOutbox(ctx context.Context, notSentBefore, resendBefore time.Time, limit int) ([]store.OutboxEntry, error) {
	rows, err := db.pool.Query(ctx, `SELECT seq, entity, entity_id, counter, created_at, sent_at FROM outbox
		WHERE (sent_at IS NULL AND created_at < $1) OR (sent_at IS NOT NULL AND sent_at < $2)
		ORDER BY seq LIMIT $3`, notSentBefore, resendBefore, limitOf(limit))
	if err != nil {
		return nil, classify(err, "pending outbox", true)
	}
	defer rows.Close()
	out := []store.OutboxEntry{}
	for rows.Next() {
		var (
			e      store.OutboxEntry
			entity string
		)
		if err := rows.Scan(&e.Seq, &entity, &e.ID, &e.Counter, &e.CreatedAt, &e.SentAt); err != nil {
			return nil, classify(err, "pending outbox", true)
		}
		e.Entity = domain.Entity(entity)
		e.CreatedAt, e.SentAt = e.CreatedAt.UTC(), utcPtr(e.SentAt)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, classify(err, "pending outbox", true)
	}
	return out, nil
}

func (db *DB) MarkOutboxSent(ctx context.Context, e domain.Entity, marks []store.OutboxMark, at time.Time) error {
	if len(marks) == 0 {
		return nil
	}
	ids, upTo := splitMarks(marks)
	_, err := db.pool.Exec(ctx, `UPDATE outbox o SET sent_at = $2
		FROM unnest($3::bigint[], $4::bigint[]) AS m(id, up_to)
		WHERE o.entity = $1 AND o.entity_id = m.id AND o.counter <= m.up_to`,
		string(e), domain.Millis(at), ids, upTo)
	return classify(err, "mark outbox sent", false)
}

func (db *DB) AckOutbox(ctx context.Context, e domain.Entity, marks []store.OutboxMark) error {
	if len(marks) == 0 {
		return nil
	}
	ids, upTo := splitMarks(marks)
	_, err := db.pool.Exec(ctx, `DELETE FROM outbox o USING unnest($2::bigint[], $3::bigint[]) AS m(id, up_to)
		WHERE o.entity = $1 AND o.entity_id = m.id AND o.counter <= m.up_to`, string(e), ids, upTo)
	return classify(err, "ack outbox", false)
}

func splitMarks(marks []store.OutboxMark) (ids, upTo []int64) {
	ids, upTo = make([]int64, len(marks)), make([]int64, len(marks))
	for i, m := range marks {
		ids[i], upTo[i] = m.ID, m.UpTo
	}
	return ids, upTo
}

func (db *DB) OutboxDepth(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&n); err != nil {
		return 0, classify(err, "outbox depth", true)
	}
	return n, nil
}
