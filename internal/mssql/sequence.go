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
//
// ALTER SEQUENCE takes no parameters, so the new start is computed and the
// statement built inside the server, under an application lock held to the
// end of the transaction (two movers must not interleave).
func (db *DB) advanceSequence(ctx context.Context, tx *sql.Tx, e domain.Entity, id int64) error {
	t, err := table(e)
	if err != nil {
		return err
	}
	parity := idStart(db.role) % 2
	if id != 0 && id%2 != parity {
		return nil // the other side's id: never allocated here
	}
	seq := t + "_id_seq" // dbo.products_id_seq or dbo.users_id_seq: our constants
	_, err = tx.ExecContext(ctx, `
		DECLARE @next BIGINT = (SELECT CASE WHEN last_used_value IS NULL THEN CAST(current_value AS BIGINT)
			ELSE CAST(current_value AS BIGINT) + CAST(increment AS BIGINT) END
			FROM sys.sequences WHERE object_id = OBJECT_ID(@p3));
		IF @p1 = 0 OR @next <= @p1
		BEGIN
			DECLARE @r INT;
			EXEC @r = sp_getapplock @Resource = @p3, @LockMode = N'Exclusive', @LockOwner = N'Transaction', @LockTimeout = 10000;
			IF @r < 0 THROW 50001, N'sequence lock not granted', 1;
			SET @next = (SELECT CASE WHEN last_used_value IS NULL THEN CAST(current_value AS BIGINT)
				ELSE CAST(current_value AS BIGINT) + CAST(increment AS BIGINT) END
				FROM sys.sequences WHERE object_id = OBJECT_ID(@p3));
			DECLARE @top BIGINT = (SELECT MAX(id) FROM (SELECT TOP (1) id FROM `+t+` WHERE id % 2 = @p2 ORDER BY id DESC) s);
			IF @top IS NULL OR @top < @p1 SET @top = @p1;
			IF @top > 0 AND @next <= @top
			BEGIN
				DECLARE @sql NVARCHAR(300) = N'ALTER SEQUENCE ' + @p3 + N' RESTART WITH ' + CAST(@top + 2 AS NVARCHAR(20));
				EXEC (@sql);
			END
		END`, id, parity, seq)
	return err
}
