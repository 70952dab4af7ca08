package domain

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// Products and users are encoded by appending bytes rather than through a
// nested json.Marshal per value: a list of 100 products is the API's most
// common large answer, and a nested Marshal per element, whose output
// encoding/json then re-scans, made it about 3.5× slower to encode
// (BenchmarkMarshalProducts). The output is byte for byte what
// encoding/json would write for the same fields (json_test.go checks).

// MarshalJSON writes the shape clients of the original API expect.
func (p Product) MarshalJSON() ([]byte, error) {
	return p.AppendJSON(make([]byte, 0, 128+len(p.Name)+len(p.Description))), nil
}

// AppendJSON appends
// {"id","name","description","price","createdAt","updatedAt"} to b.
func (p Product) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, p.ID, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, p.Name)
	b = append(b, `,"description":`...)
	b = appendString(b, p.Description)
	b = append(b, `,"price":"`...)
	b = append(b, p.Price.String()...)
	b = append(b, '"')
	return appendTimes(b, p.CreatedAt, p.UpdatedAt)
}

// MarshalJSON writes the shape clients of the original API expect.
func (u User) MarshalJSON() ([]byte, error) {
	return u.AppendJSON(make([]byte, 0, 112+len(u.Name)+len(u.Email))), nil
}

// AppendJSON appends {"id","name","email","createdAt","updatedAt"} to b.
func (u User) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, u.ID, 10)
	b = append(b, `,"name":`...)
	b = appendString(b, u.Name)
	b = append(b, `,"email":`...)
	b = appendString(b, u.Email)
	return appendTimes(b, u.CreatedAt, u.UpdatedAt)
}

// appendTimes ends an object with its createdAt and updatedAt in TimeLayout.
func appendTimes(b []byte, created, updated time.Time) []byte {
	b = append(b, `,"createdAt":"`...)
	b = Millis(created).AppendFormat(b, TimeLayout)
	b = append(b, `","updatedAt":"`...)
	b = Millis(updated).AppendFormat(b, TimeLayout)
	return append(b, `"}`...)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string escaped as encoding/json escapes
// it by default: HTML-safe (<, >, & as \u003c...), U+2028 and U+2029
// escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
