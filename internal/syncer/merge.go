package syncer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// Outcome statuses recorded for one item.
const (
	StatusCreated   = "created"
	StatusUpdated   = "updated"
	StatusDeleted   = "deleted"
	StatusUnchanged = "unchanged"
	// StatusConflict: both databases changed the item since they last
	// agreed (merged field by field, both versions and the result in the
	// detail), or a user's email stayed taken by another user on the other
	// side until the queue's retries were spent.
	StatusConflict = "conflict"
	StatusFailed   = "failed" // retries exhausted
)

// Statuses lists every outcome, in the order status reports show them.
var Statuses = []string{StatusCreated, StatusUpdated, StatusDeleted, StatusUnchanged, StatusConflict, StatusFailed}

// casAttempts bounds how often one merge re-reads and retries when a row
// changed between its read and its compare-and-set write; past that the
// message fails and the queue redelivers it.
const casAttempts = 5

// kind adapts one entity type to the generic merge.
type kind[T any] struct {
	load func(context.Context, store.DB, int64) (T, bool, error)
	// put writes row to target; vouch covers what it reads from source
	// beyond row (a user holding the email) before that is copied too.
	put     func(ctx context.Context, target, source store.DB, row T, expect *domain.Vector, vouch func(context.Context) error) (store.PutResult, error)
	ver     func(T) domain.Vector
	jump    func(T) domain.Jump // the loading database's own entry's last jump
	version func(T) time.Time   // updatedAt, reported only
	deleted func(T) bool
	differ  func(a, b T) []string // the columns whose values differ (the vector aside)
	merge   func(p, f T) T        // field by field, for concurrent rows
	detail  func(T) any           // JSON form for a conflict's detail
}

var productKind = kind[domain.Product]{
	load: func(ctx context.Context, db store.DB, id int64) (domain.Product, bool, error) {
		return db.LoadProduct(ctx, id)
	},
	put: func(ctx context.Context, db, _ store.DB, p domain.Product, expect *domain.Vector, _ func(context.Context) error) (store.PutResult, error) {
		return db.PutProduct(ctx, p, expect)
	},
	ver:     func(p domain.Product) domain.Vector { return p.Ver },
	jump:    func(p domain.Product) domain.Jump { return p.Jump },
	version: func(p domain.Product) time.Time { return p.UpdatedAt },
	deleted: domain.Product.Deleted,
	differ: func(a, b domain.Product) []string {
		return names(
			field{"name", a.Name == b.Name},
			field{"description", a.Description == b.Description},
			field{"price", a.Price == b.Price},
			field{"createdAt", a.CreatedAt.Equal(b.CreatedAt)},
			field{"updatedAt", a.UpdatedAt.Equal(b.UpdatedAt)},
			field{"deletedAt", sameTime(a.DeletedAt, b.DeletedAt)},
			field{"nameAt", a.NameAt.Equal(b.NameAt)},
			field{"descriptionAt", a.DescriptionAt.Equal(b.DescriptionAt)},
			field{"priceAt", a.PriceAt.Equal(b.PriceAt)},
		)
	},
	merge:  mergeProducts,
	detail: productDetail,
}

var userKind = kind[domain.User]{
	load: func(ctx context.Context, db store.DB, id int64) (domain.User, bool, error) {
		return db.LoadUser(ctx, id)
	},
	put:     putUser,
	ver:     func(u domain.User) domain.Vector { return u.Ver },
	jump:    func(u domain.User) domain.Jump { return u.Jump },
	version: func(u domain.User) time.Time { return u.UpdatedAt },
	deleted: domain.User.Deleted,
	differ: func(a, b domain.User) []string {
		return names(
			field{"name", a.Name == b.Name},
			field{"email", a.Email == b.Email},
			field{"createdAt", a.CreatedAt.Equal(b.CreatedAt)},
			field{"updatedAt", a.UpdatedAt.Equal(b.UpdatedAt)},
			field{"deletedAt", sameTime(a.DeletedAt, b.DeletedAt)},
			field{"nameAt", a.NameAt.Equal(b.NameAt)},
			field{"emailAt", a.EmailAt.Equal(b.EmailAt)},
		)
	},
	merge:  mergeUsers,
	detail: userDetail,
}

// same reports whether a and b hold the same value in every column but the
// vector: what sync, diff runs and verify reports all call equal.
func (k kind[T]) same(a, b T) bool { return len(k.differ(a, b)) == 0 }

// field is one column of a comparison: its name and whether it is equal.
type field struct {
	name string
	same bool
}

// names lists the columns that differ, in the order given.
func names(fs ...field) []string {
	var out []string
	for _, f := range fs {
		if !f.same {
			out = append(out, f.name)
		}
	}
	return out
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

// pick is one field of a field-by-field merge: the value changed last wins;
// on equal change times the primary's.
func pick[V any](pv V, pat time.Time, fv V, fat time.Time) (V, time.Time) {
	if fat.After(pat) {
		return fv, fat
	}
	return pv, pat
}

// tombstone merges deletion: a delete wins over a concurrent edit (the
// earlier deletion time if both deleted).
func tombstone(p, f *time.Time) *time.Time {
	switch {
	case p == nil:
		return f
	case f == nil, !f.Before(*p):
		return p
	}
	return f
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// mergeProducts merges two concurrent versions of one product. The result's
// vector is the element-wise maximum, which dominates both.
func mergeProducts(p, f domain.Product) domain.Product {
	m := p
	m.Name, m.NameAt = pick(p.Name, p.NameAt, f.Name, f.NameAt)
	m.Description, m.DescriptionAt = pick(p.Description, p.DescriptionAt, f.Description, f.DescriptionAt)
	m.Price, m.PriceAt = pick(p.Price, p.PriceAt, f.Price, f.PriceAt)
	m.CreatedAt = minTime(p.CreatedAt, f.CreatedAt)
	m.UpdatedAt = maxTime(p.UpdatedAt, f.UpdatedAt)
	m.DeletedAt = tombstone(p.DeletedAt, f.DeletedAt)
	m.Ver = p.Ver.Max(f.Ver)
	return m
}

func mergeUsers(p, f domain.User) domain.User {
	m := p
	m.Name, m.NameAt = pick(p.Name, p.NameAt, f.Name, f.NameAt)
	m.Email, m.EmailAt = pick(p.Email, p.EmailAt, f.Email, f.EmailAt)
	m.CreatedAt = minTime(p.CreatedAt, f.CreatedAt)
	m.UpdatedAt = maxTime(p.UpdatedAt, f.UpdatedAt)
	m.DeletedAt = tombstone(p.DeletedAt, f.DeletedAt)
	m.Ver = p.Ver.Max(f.Ver)
	return m
}

type vectorJSON struct {
	P int64 `json:"primary"`
	F int64 `json:"fallback"`
}

type productJSON struct {
	ID            int64      `json:"id"`
	Name          string     `json:"name"`
	Description   string     `json:"description"`
	Price         string     `json:"price"`
	CreatedAt     string     `json:"createdAt"`
	UpdatedAt     string     `json:"updatedAt"`
	DeletedAt     *string    `json:"deletedAt"`
	Version       vectorJSON `json:"version"`
	NameAt        string     `json:"nameAt"`
	DescriptionAt string     `json:"descriptionAt"`
	PriceAt       string     `json:"priceAt"`
}

type userJSON struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Email     string     `json:"email"`
	CreatedAt string     `json:"createdAt"`
	UpdatedAt string     `json:"updatedAt"`
	DeletedAt *string    `json:"deletedAt"`
	Version   vectorJSON `json:"version"`
	NameAt    string     `json:"nameAt"`
	EmailAt   string     `json:"emailAt"`
}

func timePtrJSON(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := domain.FormatTime(*t)
	return &s
}

func productDetail(p domain.Product) any {
	return productJSON{p.ID, p.Name, p.Description, p.Price.String(), domain.FormatTime(p.CreatedAt), domain.FormatTime(p.UpdatedAt),
		timePtrJSON(p.DeletedAt), vectorJSON{p.Ver.P, p.Ver.F}, domain.FormatTime(p.NameAt), domain.FormatTime(p.DescriptionAt), domain.FormatTime(p.PriceAt)}
}

func userDetail(u domain.User) any {
	return userJSON{u.ID, u.Name, u.Email, domain.FormatTime(u.CreatedAt), domain.FormatTime(u.UpdatedAt),
		timePtrJSON(u.DeletedAt), vectorJSON{u.Ver.P, u.Ver.F}, domain.FormatTime(u.NameAt), domain.FormatTime(u.EmailAt)}
}

// conflictDetail is the JSON recorded with a conflict: both versions as
// sync read them and what both databases hold now.
func conflictDetail(primary, fallback, merged any) string {
	b, err := json.Marshal(map[string]any{"primary": primary, "fallback": fallback, "merged": merged})
	if err != nil {
		return ""
	}
	return string(b)
}

// reasonNeither is the reason of an item in neither database.
const reasonNeither = "in neither database"

// action is what merging one item must write.
type action int

const (
	actNone         action = iota
	actToFallback          // the primary's row dominates: fast-forward the fallback
	actToPrimary           // the fallback's row dominates: fast-forward the primary
	actMergeBoth           // concurrent: write the merged row to both
	actNeitherSides        // in neither database
)

// regression names the databases that went back in time for one item: a
// restore or a rebuild lost writes of their own that the other database
// had already synced.
type regression uint8

const (
	regPrimary  regression = 1 << iota // the primary lacks primary writes the fallback holds
	regFallback                        // and the other way round
)

// reason explains a regression outcome; how says what sync did about it.
func (r regression) reason(how string) string {
	var what string
	switch {
	case r == regPrimary|regFallback:
		what = "both databases went back in time (restored or rebuilt): each lacks writes of its own that the other had synced"
	case r&regPrimary != 0:
		what = "the primary database went back in time (restored or rebuilt): it lacks writes of its own that the fallback had synced"
	default:
		what = "the fallback database went back in time (restored or rebuilt): it lacks writes of its own that the primary had synced"
	}
	return what + "; " + how
}

// repairing explains a merge of a row of a database known to have gone
// back in time, whose repair has not finished.
func (r regression) repairing() string {
	what := "the fallback database"
	switch r {
	case regPrimary | regFallback:
		what = "both databases"
	case regPrimary:
		what = "the primary database"
	}
	return what + " went back in time (restored or rebuilt) and a repair run has not yet compared every row: " +
		"its version vectors are not trusted; merged field by field, so that the writes each still has survive"
}

// driftReason explains equal vectors over different rows: no history of
// API writes and syncs produces them (past the 0/0 rows of an upgrade).
const driftReason = "changed outside the API: both databases hold the same version vector over different rows " +
	"(a row edited by SQL behind the API); merged field by field"

// verdict is what merging one item must write, and why.
type verdict struct {
	act action
	reg regression // the databases this item shows went back in time
	// distrusted: the databases known to have gone back in time whose row
	// would otherwise have dominated; merged field by field instead.
	distrusted regression
	drift      bool // equal vectors over different rows: changed outside the API
}

// decide compares the two rows by their version vectors, never by time.
//
// A database learns the other's vector entry only from the other, so its
// copy of that entry is a value the other's own entry had. When it is not
// (ahead of the owner's entry, or inside the owner's last jump: see
// domain.Lost), the owner lost that write: it went back in time, and its
// vector must not be trusted to dominate. The row is then merged field by
// field, unless the other side's row dominates and the regressed side has
// not written the row since (it is behind, an ancestor of the other's
// row): that row is copied over it. Either way the outcome is a conflict
// whose reason says which database regressed. A live row absent from a
// database whose entry the other holds above zero was lost there too (a
// tombstone may be absent there because retention purged it).
//
// distrust names the databases known, as a whole, to have gone back in
// time (history.go): their rows never dominate until repaired.
func decide[T any](k kind[T], p T, pok bool, f T, fok bool, distrust regression) verdict {
	switch {
	case !pok && !fok:
		return verdict{act: actNeitherSides}
	case !fok:
		v := verdict{act: actToFallback}
		if k.ver(p).F > 0 && !k.deleted(p) {
			v.reg = regFallback
		}
		return v
	case !pok:
		v := verdict{act: actToPrimary}
		if k.ver(f).P > 0 && !k.deleted(f) {
			v.reg = regPrimary
		}
		return v
	}
	pv, fv := k.ver(p), k.ver(f)
	var reg regression
	if domain.Lost(pv.P, k.jump(p), fv.P) {
		reg |= regPrimary
	}
	if domain.Lost(fv.F, k.jump(f), pv.F) {
		reg |= regFallback
	}
	same := k.same(p, f)
	switch {
	case reg == 0 && pv == fv && same:
		return verdict{act: actNone}
	case reg == 0 && pv == fv && pv == (domain.Vector{}):
		// Rows from before version vectors (0/0 after the upgrade) that
		// differ: merged like concurrent edits.
		return verdict{act: actMergeBoth}
	case reg == 0 && pv == fv && distrust != 0:
		return verdict{act: actMergeBoth, distrusted: distrust}
	case reg == 0 && pv == fv:
		return verdict{act: actMergeBoth, drift: true}
	case reg == regPrimary && fv.Dominates(pv) && fv.P > pv.P:
		return verdict{act: actToPrimary, reg: reg} // behind: the fallback's row has seen all the primary has
	case reg == regFallback && pv.Dominates(fv) && pv.F > fv.F:
		return verdict{act: actToFallback, reg: reg}
	case reg != 0:
		return verdict{act: actMergeBoth, reg: reg}
	case pv.Dominates(fv) && distrust&regPrimary != 0:
		return verdict{act: actMergeBoth, distrusted: regPrimary}
	case fv.Dominates(pv) && distrust&regFallback != 0:
		return verdict{act: actMergeBoth, distrusted: regFallback}
	case pv.Dominates(fv):
		return verdict{act: actToFallback}
	case fv.Dominates(pv):
		return verdict{act: actToPrimary}
	}
	return verdict{act: actMergeBoth}
}

// sources names the databases whose rows an action copies into the other.
func (a action) sources() regression {
	switch a {
	case actToFallback:
		return regPrimary
	case actToPrimary:
		return regFallback
	case actMergeBoth:
		return regPrimary | regFallback
	}
	return 0
}

// trust is what a merge asks about the databases' histories (history.go).
type trust interface {
	// distrust names the databases known to have gone back in time.
	distrust() regression
	// vouch records a mark of each source's history in the other database
	// before their rows are copied; errDistrusted if a source turns out
	// to have gone back in time though known said otherwise.
	vouch(ctx context.Context, known, srcs regression) error
}

// merged is the result of merging one item.
type merged struct {
	status  string
	reason  string
	detail  string
	version time.Time     // updatedAt both sides hold now; zero if neither had the row
	agreed  domain.Vector // the vector both sides hold now
	reg     regression    // the databases that went back in time for this item
}

// merge makes both databases hold the same row of one item and acknowledges
// the outbox entries that row covers. An error means a transient failure
// (or an email still taken, see mergeUser): the caller retries the whole
// merge, which is safe because every write is a compare-and-set on what
// this merge read. before, if set, is called with the outcome a merge is
// about to write, before it writes either database; its error stops the
// merge with nothing written.
func merge[T any](ctx context.Context, k kind[T], primary, fallback store.DB, t trust, id int64, e domain.Entity, before func(merged) error) (merged, error) {
	var err error
	for range casAttempts {
		var m merged
		m, err = mergeOnce(ctx, k, primary, fallback, t, id, before)
		if errors.Is(err, store.ErrChanged) {
			continue // someone wrote the row meanwhile: read both again
		}
		if err != nil {
			return merged{}, err
		}
		if m.status == "" {
			return m, nil
		}
		if err := ack(ctx, primary, fallback, e, id, m.agreed); err != nil {
			return merged{}, err
		}
		return m, nil
	}
	return merged{}, err
}

// ack deletes each side's outbox entries for the item that the agreed
// vector covers: a write made on a side after the rows were read has a
// higher counter and stays, so its own message syncs it.
func ack(ctx context.Context, primary, fallback store.DB, e domain.Entity, id int64, agreed domain.Vector) error {
	if err := primary.AckOutbox(ctx, e, []store.OutboxMark{{ID: id, UpTo: agreed.P}}); err != nil {
		return err
	}
	return fallback.AckOutbox(ctx, e, []store.OutboxMark{{ID: id, UpTo: agreed.F}})
}

func mergeOnce[T any](ctx context.Context, k kind[T], primary, fallback store.DB, t trust, id int64, before func(merged) error) (merged, error) {
	p, pok, err := k.load(ctx, primary, id)
	if err != nil {
		return merged{}, err
	}
	f, fok, err := k.load(ctx, fallback, id)
	if err != nil {
		return merged{}, err
	}
	status := func(res store.PutResult, row T) string {
		if res == store.PutCreated && k.deleted(row) {
			return StatusDeleted // a tombstone arriving where the row never existed
		}
		return string(res)
	}
	pv, fv := k.ver(p), k.ver(f)
	var expectP, expectF *domain.Vector
	if pok {
		expectP = &pv
	}
	if fok {
		expectF = &fv
	}
	known := t.distrust()
	d := decide(k, p, pok, f, fok, known)
	m := k.merge(p, f)
	if d.distrusted != 0 && d.reg == 0 {
		// A row of a database under repair that would have dominated:
		// if the field-by-field merge takes nothing from the other side,
		// it is the plain copy it looked like (a write made since).
		switch {
		case k.same(m, p) && k.ver(m) == pv:
			d = verdict{act: actToFallback}
		case k.same(m, f) && k.ver(m) == fv:
			d = verdict{act: actToPrimary}
		}
	}
	if err := t.vouch(ctx, known, d.act.sources()); err != nil {
		return merged{}, err
	}
	// again vouches for a source read again by a put (putUser).
	again := func(src regression) func(context.Context) error {
		return func(ctx context.Context) error { return t.vouch(ctx, known, src) }
	}
	// regressed describes a copy over a database that went back in time:
	// a conflict, so that it can be found, with all three rows.
	regressed := func(m merged, row T) merged {
		if d.reg == 0 {
			return m
		}
		var pd, fd any
		if pok {
			pd = k.detail(p)
		}
		if fok {
			fd = k.detail(f)
		}
		m.status, m.reg = StatusConflict, d.reg
		m.reason = d.reg.reason("the other database's row has seen every write this one still has; it was copied over it")
		m.detail = conflictDetail(pd, fd, k.detail(row))
		return m
	}
	// predicted is a copy's status before it is written: what its
	// PutResult will be if the target still holds what was read.
	predicted := func(target T, targetOK bool, row T) string {
		switch {
		case k.deleted(row) && (!targetOK || !k.deleted(target)):
			return StatusDeleted
		case !targetOK:
			return StatusCreated
		}
		return StatusUpdated
	}
	announce := func(m merged) error {
		if before == nil {
			return nil
		}
		return before(m)
	}
	switch d.act {
	case actNeitherSides:
		return merged{status: StatusUnchanged, reason: reasonNeither}, nil
	case actNone:
		return merged{status: StatusUnchanged, version: k.version(p), agreed: pv}, nil
	case actToFallback:
		if err := announce(regressed(merged{status: predicted(f, fok, p), version: k.version(p), agreed: pv}, p)); err != nil {
			return merged{}, err
		}
		res, err := k.put(ctx, fallback, primary, p, expectF, again(regPrimary))
		if err != nil {
			return merged{}, err
		}
		return regressed(merged{status: status(res, p), version: k.version(p), agreed: pv}, p), nil
	case actToPrimary:
		if err := announce(regressed(merged{status: predicted(p, pok, f), version: k.version(f), agreed: fv}, f)); err != nil {
			return merged{}, err
		}
		res, err := k.put(ctx, primary, fallback, f, expectP, again(regFallback))
		if err != nil {
			return merged{}, err
		}
		return regressed(merged{status: status(res, f), version: k.version(f), agreed: fv}, f), nil
	}
	reason := "changed in both databases since they last agreed; merged field by field"
	switch {
	case d.reg != 0:
		reason = d.reg.reason("merged field by field, so that the writes each still has survive")
	case d.distrusted != 0:
		reason = d.distrusted.repairing()
	case d.drift:
		reason = driftReason
	}
	out := merged{
		status:  StatusConflict,
		reason:  reason,
		detail:  conflictDetail(k.detail(p), k.detail(f), k.detail(m)),
		version: k.version(m),
		agreed:  k.ver(m),
		reg:     d.reg,
	}
	if err := announce(out); err != nil {
		return merged{}, err
	}
	if _, err := k.put(ctx, primary, fallback, m, expectP, again(regFallback)); err != nil {
		return merged{}, err
	}
	if _, err := k.put(ctx, fallback, primary, m, expectF, again(regPrimary)); err != nil {
		// The primary holds the merged row already; the retry finds it
		// dominating (or concurrent with a newer write) and goes on from
		// there; the intent announced above keeps the outcome a conflict.
		return merged{}, err
	}
	return out, nil
}

// putUser writes u to target. When u's email is held there by another user
// whose row on source is newer and no longer holds that email (the email
// moved, or two users swapped theirs), both rows are written together, in
// one transaction: the target then takes the move as a whole. Any other
// email clash is returned as a Conflict error: the caller fails the message
// so that the queue retries it later (the holder's own message may free the
// email meanwhile); see Engine.ItemPoisoned for when the retries are spent.
func putUser(ctx context.Context, target, source store.DB, u domain.User, expect *domain.Vector, vouch func(context.Context) error) (store.PutResult, error) {
	res, err := target.PutUser(ctx, u, expect)
	if !domain.IsKind(err, domain.KindConflict) || u.Deleted() {
		return res, err
	}
	holder, ok, herr := target.UserByEmail(ctx, u.Email)
	if herr != nil {
		return "", herr
	}
	if !ok || holder.ID == u.ID {
		return "", err
	}
	newer, ok, lerr := source.LoadUser(ctx, holder.ID)
	if lerr != nil {
		return "", lerr
	}
	stale := ok && newer.Ver != holder.Ver && newer.Ver.Dominates(holder.Ver)
	if !stale || (!newer.Deleted() && domain.EmailKey(newer.Email) == domain.EmailKey(u.Email)) {
		return "", emailTaken(err, holder.ID)
	}
	if err := vouch(ctx); err != nil {
		return "", err // newer was read after the merge's mark: it needs one of its own
	}
	out, jerr := target.PutUsers(ctx, []store.UserPut{{User: u, Expect: expect}, {User: newer, Expect: &holder.Ver}})
	if jerr != nil {
		return "", jerr
	}
	return out[0], nil
}

// emailTaken names the user holding the email in the error's message.
func emailTaken(err error, holder int64) error {
	return domain.Wrap(domain.KindConflict, err, fmt.Sprintf("the email is held by user %d in the other database", holder))
}
