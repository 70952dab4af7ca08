package memdb

import (
	"strings"
	"unicode/utf8"

	"dualsync/internal/domain"
)

// The column checks PostgreSQL makes on a write (migrations/001_init.sql):
// an error is Invalid, as the adapter classifies SQLSTATE class 22.

// fitText is PostgreSQL's assignment to varchar(n): at most n characters,
// except that excess characters that are all spaces are cut off silently;
// no invalid UTF-8 and no NUL byte (which PostgreSQL's text cannot hold).
func fitText(tbl, col, v string, n int) (string, error) {
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return v, rejected("invalid character encoding", "22021", tbl, col)
	}
	if utf8.RuneCountInString(v) <= n {
		return v, nil
	}
	cut, k := 0, 0 // cut: the byte offset of character n
	for i := range v {
		if k == n {
			cut = i
			break
		}
		k++
	}
	if strings.Trim(v[cut:], " ") != "" {
		return v, rejected("value too long", "22001", tbl, col)
	}
	return v[:cut], nil
}

// fitMoney is numeric(10,2).
func fitMoney(tbl, col string, m domain.Money) error {
	if m > domain.MaxMoney || m < -domain.MaxMoney {
		return rejected("numeric value out of range", "22003", tbl, col)
	}
	return nil
}

func rejected(what, code, tbl, col string) error {
	return domain.Errorf(domain.KindInvalid, "the database rejected a value: %s on column %s of table %s (SQLSTATE %s)", what, col, tbl, code)
}

// fitProduct returns p as the products table stores it, or Invalid.
func fitProduct(p domain.Product) (domain.Product, error) {
	var err error
	if p.Name, err = fitText("products", "name", p.Name, 255); err != nil {
		return p, err
	}
	if p.Description, err = fitText("products", "description", p.Description, 4000); err != nil {
		return p, err
	}
	return p, fitMoney("products", "price", p.Price)
}

// fitUser returns u as the users table stores it and its email key, or
// Invalid.
func fitUser(u domain.User) (domain.User, string, error) {
	// The adapter computes the key from the email as given, before the
	// column could cut spaces off (the key trims them anyway).
	key := domain.EmailKey(u.Email)
	var err error
	if u.Name, err = fitText("users", "name", u.Name, 100); err != nil {
		return u, "", err
	}
	if u.Email, err = fitText("users", "email", u.Email, 254); err != nil {
		return u, "", err
	}
	key, err = fitText("users", "email_key", key, 254)
	return u, key, err
}
