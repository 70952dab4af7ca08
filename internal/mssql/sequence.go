package mssql

import (
	"context"
	"database/sql"
	"strings"

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
// being written or 0, @p2 this side's parity). It only ever consumes values,
// as creates do, and never restarts the sequence: a RESTART could move it
// backwards past a value a create drew meanwhile (handed out twice), and its
// schema lock, held to commit, could deadlock with creates. Its correctness
// rests only on what Microsoft Learn documents:
//
//   - NEXT VALUE FOR returns the sequence's next value and consumes it
//     (https://learn.microsoft.com/sql/t-sql/functions/next-value-for-transact-sql);
//   - sp_sequence_get_range consumes a range of values atomically, forward
//     only, with the UPDATE permission creates already need, no ALTER
//     (https://learn.microsoft.com/sql/relational-databases/system-stored-procedures/sp-sequence-get-range-transact-sql);
//   - sys.sequences.current_value is the last value handed out (by either),
//     or the start value if none was; last_used_value (SQL Server 2017 and
//     later, Azure SQL) the last value NEXT VALUE FOR generated
//     (https://learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-sequences-transact-sql).
//
// Hence the next value is at least current_value, and above last_used_value:
// "want < current_value or want <= last_used_value" proves there is nothing
// to do, without a lock. last_used_value is read only where it exists (as
// dynamic SQL: a missing column fails the whole batch's compile), so SQL
// Server 2016 runs the same batch with the current_value test alone, which
// may cost one unused id, never a reused one. Otherwise, under an application
// lock held to the end of the transaction (two movers never both consume a
// gap), it draws the real next value and, if that is not above want,
// consumes the values up to want with sp_sequence_get_range. A drawn value
// already past want is left unused: a one-id gap, as a rolled-back create
// leaves.
//
// The application lock timing out raises 50001 (unavailable, as PostgreSQL
// answers a lock it cannot get); the lock request being chosen as a
// deadlock victim (sp_getapplock returns -3) raises 51205, which inTx retries
// as it retries 1205.
func sequenceSQL(e domain.Entity) (string, error) {
	t, err := table(e)
	if err != nil {
		return "", err
	}
	seq := t + "_id_seq" // dbo.products_id_seq or dbo.users_id_seq: our constants
	// settled sets @done when the next value is certainly above @want.
	settled := `SET @done = 0;
	SELECT @done = 1 FROM sys.sequences WHERE object_id = OBJECT_ID(N'SEQ') AND @want < CAST(current_value AS BIGINT);
	IF @done = 0 AND @has_last = 1
		EXEC sp_executesql N'SELECT @d = 1 FROM sys.sequences WHERE object_id = OBJECT_ID(N''SEQ'') AND @w <= CAST(ISNULL(last_used_value, 0) AS BIGINT)',
			N'@w BIGINT, @d BIT OUTPUT', @w = @want, @d = @done OUTPUT;`
	settled = strings.ReplaceAll(settled, "SEQ", seq)
	return `DECLARE @want BIGINT, @done BIT = 0, @has_last BIT = 0;
SET @want = @p1;
IF @p1 = 0
	SET @want = ISNULL((SELECT TOP (1) id FROM ` + t + ` WHERE id % 2 = @p2 ORDER BY id DESC), 0);
IF EXISTS (SELECT 1 FROM sys.all_columns WHERE object_id = OBJECT_ID(N'sys.sequences') AND name = N'last_used_value')
	SET @has_last = 1;
IF @want > 0
BEGIN
	` + settled + `
END
IF @want > 0 AND @done = 0
BEGIN
	DECLARE @r INT;
	EXEC @r = sp_getapplock @Resource = N'dualsync:` + seq + `', @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 10000;
	IF @r = -3 THROW 51205, N'sequence lock: chosen as deadlock victim', 1;
	IF @r < 0 THROW 50001, N'sequence lock not granted in time', 1;
	DECLARE @top BIGINT = (SELECT TOP (1) id FROM ` + t + ` WHERE id % 2 = @p2 ORDER BY id DESC);
	IF @top > @want SET @want = @top;
	` + settled + `
	IF @done = 0
	BEGIN
		DECLARE @next BIGINT = NEXT VALUE FOR ` + seq + `;
		IF @next < @want
		BEGIN
			DECLARE @size BIGINT = (@want - @next + 1) / 2, @first SQL_VARIANT, @last SQL_VARIANT;
			EXEC sp_sequence_get_range @sequence_name = N'` + seq + `', @range_size = @size,
				@range_first_value = @first OUTPUT, @range_last_value = @last OUTPUT;
		END
	END
END`, nil
}
