package mssql

import (
	"context"
	"database/sql"

	"dualsync/internal/domain"
)

// advanceSequence moves the entity's id sequence past the highest id of this
// database's own parity that the table holds (at least id), so Create never
// hands out an id a row already has: a rebuilt or restored database gets
// rows of its own parity back from the other side through sync. It never
// moves a sequence backwards. id 0 means "look only at the table".
func (db *DB) advanceSequence(ctx context.Context, tx *sql.Tx, e domain.Entity, id int64) error {
	parity := idStart(db.role) % 2
	if id != 0 && id%2 != parity {
		return nil // the other side's id: never allocated here
	}
	q, err := sequenceSQL(e)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, q, id, parity)
	return err
}

// sequenceSQL is the one batch that moves the entity's sequence (@p1 the id
// being written or 0, @p2 this side's parity). Its correctness rests only on
// what Microsoft Learn documents:
//
//   - NEXT VALUE FOR returns the sequence's next value and consumes it
//     (https://learn.microsoft.com/sql/t-sql/functions/next-value-for-transact-sql);
//   - ALTER SEQUENCE ... RESTART WITH n makes n the next value returned
//     (https://learn.microsoft.com/sql/t-sql/statements/alter-sequence-transact-sql);
//   - sys.sequences.current_value is the last value handed out, or the start
//     value if none was, and last_used_value the last value NEXT VALUE FOR
//     generated (https://learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-sequences-transact-sql).
//
// It does not rely on what current_value or last_used_value show after a
// RESTART (not documented). It uses one invariant of this adapter instead:
// the sequence only ever moves forward (NO CYCLE, and this batch restarts it
// only to a value above the one it has just drawn). Hence the next value is
// at least current_value, and above last_used_value: the quick test "want <
// current_value or want <= last_used_value" proves there is nothing to do,
// without a lock. Otherwise, under an application lock held to the end of
// the transaction (two movers never interleave), it draws the real next
// value and restarts the sequence after the highest own id if the drawn
// value is not above it. A drawn value that was already past it is left
// unused: a one-id gap, as a rolled-back create leaves.
//
// The highest own id is read with READCOMMITTEDLOCK: under READ COMMITTED
// SNAPSHOT (Azure SQL Database's default) a plain read would not see a
// create still in flight, and would not wait for it.
//
// The application lock timing out raises 50001 (unavailable, as PostgreSQL
// answers a lock it cannot get); the lock request being chosen as a
// deadlock victim (sp_getapplock returns -3) raises 51205, which inTx retries
// as it retries 1205. ALTER SEQUENCE takes no parameters: the statement is
// built inside the server from a BIGINT it computed and our constant name.
func sequenceSQL(e domain.Entity) (string, error) {
	t, err := table(e)
	if err != nil {
		return "", err
	}
	seq := t + "_id_seq" // dbo.products_id_seq or dbo.users_id_seq: our constants
	return `DECLARE @want BIGINT;
SET @want = @p1;
IF @p1 = 0
	SET @want = ISNULL((SELECT TOP (1) id FROM ` + t + ` WHERE id % 2 = @p2 ORDER BY id DESC), 0);
IF @want > 0 AND NOT EXISTS (SELECT 1 FROM sys.sequences WHERE object_id = OBJECT_ID(N'` + seq + `')
	AND (@want < CAST(current_value AS BIGINT) OR @want <= CAST(ISNULL(last_used_value, 0) AS BIGINT)))
BEGIN
	DECLARE @r INT;
	EXEC @r = sp_getapplock @Resource = N'dualsync:` + seq + `', @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 10000;
	IF @r = -3 THROW 51205, N'sequence lock: chosen as deadlock victim', 1;
	IF @r < 0 THROW 50001, N'sequence lock not granted in time', 1;
	DECLARE @top BIGINT = (SELECT TOP (1) id FROM ` + t + ` WITH (READCOMMITTEDLOCK) WHERE id % 2 = @p2 ORDER BY id DESC);
	IF @top > @want SET @want = @top;
	IF NOT EXISTS (SELECT 1 FROM sys.sequences WHERE object_id = OBJECT_ID(N'` + seq + `')
		AND (@want < CAST(current_value AS BIGINT) OR @want <= CAST(ISNULL(last_used_value, 0) AS BIGINT)))
	BEGIN
		DECLARE @next BIGINT = NEXT VALUE FOR ` + seq + `;
		IF @next <= @want
		BEGIN
			DECLARE @sql NVARCHAR(200) = N'ALTER SEQUENCE ` + seq + ` RESTART WITH ' + CAST(@want + 2 AS NVARCHAR(20));
			EXEC (@sql);
		END
	END
END`, nil
}
