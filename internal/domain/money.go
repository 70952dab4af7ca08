package domain

import (
	"errors"
	"strconv"
	"strings"
)

// Money is an amount in cents. Prices are DECIMAL(10,2) in both databases and
// never pass through float64, so 0.1 + 0.2 problems cannot happen.
type Money int64

// MaxMoney is the largest amount DECIMAL(10,2) holds: 99,999,999.99.
const MaxMoney Money = 99_999_999_99

var errMoneySyntax = errors.New("must be a decimal number such as 299.99")

// ParseMoney parses a plain decimal ("299.99", "5", "-1.5") into cents.
// Exponents, more than two decimals and values beyond int64 are errors.
func ParseMoney(s string) (Money, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !digits(whole) || (hasDot && (frac == "" || !digits(frac))) {
		return 0, errMoneySyntax
	}
	if len(frac) > 2 {
		// "1.50" and "1.500" are the same amount; only non-zero digits past
		// the second decimal are an error.
		if strings.Trim(frac[2:], "0") != "" {
			return 0, errors.New("must have at most 2 decimal places")
		}
		frac = frac[:2]
	}
	for len(frac) < 2 {
		frac += "0"
	}
	whole = strings.TrimLeft(whole, "0")
	if len(whole) > 16 {
		return 0, errors.New("must be less than 100000000")
	}
	n, err := strconv.ParseInt(whole+frac, 10, 64)
	if whole == "" {
		n, err = strconv.ParseInt(frac, 10, 64)
	}
	if err != nil {
		return 0, errMoneySyntax
	}
	if neg {
		n = -n
	}
	return Money(n), nil
}

func digits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// String renders the amount with exactly two decimals: "299.99", "5.00".
func (m Money) String() string {
	sign := ""
	n := int64(m)
	if n < 0 {
		sign, n = "-", -n
	}
	return sign + strconv.FormatInt(n/100, 10) + "." + twoDigits(n%100)
}

func twoDigits(n int64) string {
	if n < 10 {
		return "0" + strconv.FormatInt(n, 10)
	}
	return strconv.FormatInt(n, 10)
}

// MarshalJSON writes money as a JSON string, as the original API did.
func (m Money) MarshalJSON() ([]byte, error) {
	return []byte(`"` + m.String() + `"`), nil
}
