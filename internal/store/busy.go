package store

import "errors"

// ErrBusy is in the chain of an Unavailable error when the database answered
// but refused the work for now because it is at a connection or request limit
// (SQL Server 10928/10929, PostgreSQL 53300). The database is up: the
// failover wrapper may serve that one call from the other database but does
// not open its breaker, so load alone never fails the whole API over.
var ErrBusy = errors.New("database busy: at its connection or request limit")
