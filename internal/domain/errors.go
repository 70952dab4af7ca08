// Package domain holds dualsync's core types (products, users, money, time),
// their validation, and the error kinds every layer speaks.
package domain

import (
	"errors"
	"fmt"
)

// Kind classifies an error so the HTTP layer can map it to a status in one place.
type Kind int

const (
	KindInternal    Kind = iota // a bug or an unexpected failure: 500, details logged only
	KindInvalid                 // the client sent something wrong: 400
	KindNotFound                // no such (live) row: 404
	KindConflict                // a unique constraint, e.g. a duplicate email: 409
	KindUnavailable             // a dependency is down or timed out: 503, and failover may retry
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindUnavailable:
		return "unavailable"
	default:
		return "internal"
	}
}

// Error is an error with a kind, a message safe to show a client, optional
// per-field messages (JSON field name -> message) and the underlying cause,
// which is logged but never sent to a client.
type Error struct {
	Kind    Kind
	Message string
	Fields  map[string]string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an *Error of the given kind with a client-safe message.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Wrap attaches a kind and client-safe message to a cause.
func Wrap(kind Kind, err error, message string) *Error {
	return &Error{Kind: kind, Message: message, Err: err}
}

// ErrorKind reports the kind of err: the first *Error in its chain decides;
// anything else is internal.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err has the given kind.
func IsKind(err error, k Kind) bool { return err != nil && ErrorKind(err) == k }
