package store

import "dualsync/internal/domain"

// CheckProductPuts refuses a PutProducts batch that names an id twice
// (KindInvalid): which of the two should win is undefined. Both adapters call
// it before writing anything, so both refuse exactly the same batches.
func CheckProductPuts(puts []ProductPut) error {
	return distinct("put products", len(puts), func(i int) int64 { return puts[i].Product.ID })
}

// CheckUserPuts is CheckProductPuts for PutUsers.
func CheckUserPuts(puts []UserPut) error {
	return distinct("put users", len(puts), func(i int) int64 { return puts[i].User.ID })
}

func distinct(what string, n int, id func(int) int64) error {
	seen := make(map[int64]bool, n)
	for i := range n {
		if seen[id(i)] {
			return domain.Errorf(domain.KindInvalid, "%s: id %d twice", what, id(i))
		}
		seen[id(i)] = true
	}
	return nil
}
