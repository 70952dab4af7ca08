package domain

import "time"

// TimeLayout is how every time leaves dualsync: UTC with milliseconds, as the
// original Node.js API wrote them ("2025-03-24T05:23:54.611Z").
const TimeLayout = "2006-01-02T15:04:05.000Z"

// Millis truncates t to UTC milliseconds. Every time is truncated before it is
// written: SQL Server keeps 100 ns and PostgreSQL 1 µs, so untruncated times
// would never compare equal across the two databases.
func Millis(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// FormatTime renders t in TimeLayout.
func FormatTime(t time.Time) string { return Millis(t).Format(TimeLayout) }

// Clock returns the current time; stores take one so tests can control time.
type Clock func() time.Time

// NextVersion returns the updatedAt for a change to a row last updated at
// prev: now, but always at least one millisecond after prev, so that two
// changes of one row never share a timestamp and a field changed later always
// has the later change time (the field-by-field merge relies on it).
func NextVersion(now, prev time.Time) time.Time {
	now = Millis(now)
	if !now.After(prev) {
		return Millis(prev).Add(time.Millisecond)
	}
	return now
}
