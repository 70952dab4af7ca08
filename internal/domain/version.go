package domain

import (
	"strings"
	"unicode/utf16"

	"golang.org/x/text/unicode/norm"
)

// Vector is a row's two-entry version vector: P counts the API writes the
// row has had on the primary, F those on the fallback. Sync copies it with
// the row. One vector dominates another when it is >= in both entries: that
// side has seen every write the other has. When neither dominates, both
// sides changed the row since they last agreed: a real conflict.
type Vector struct{ P, F int64 }

// Dominates reports whether v has seen every write w has (v >= w in both entries).
func (v Vector) Dominates(w Vector) bool { return v.P >= w.P && v.F >= w.F }

// Max is the element-wise maximum: it dominates both.
func (v Vector) Max(w Vector) Vector { return Vector{max(v.P, w.P), max(v.F, w.F)} }

// EmailKey is the one normalised form of an email under which uniqueness is
// checked, in both databases (each compares it byte for byte): Unicode NFKC
// (so full-width and other compatibility forms equal their plain letters),
// surrounding white space removed, lower case. SQL Server's case-, width-
// and kana-insensitive collation and PostgreSQL's lower() would otherwise
// disagree about which emails are the same.
func EmailKey(email string) string {
	return strings.ToLower(strings.TrimSpace(norm.NFKC.String(email)))
}

// emailKeyFits reports whether an email's key fits the key columns (254
// UTF-16 code units): NFKC can lengthen a string.
func emailKeyFits(email string) bool {
	n := 0
	for _, r := range EmailKey(email) {
		n += utf16.RuneLen(r)
	}
	return n <= 254
}
