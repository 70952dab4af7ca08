// Package ids keeps a database from handing out an id that a row already
// has somewhere: after a restore or a rebuild, a database's sequence can be
// behind ids of its own parity that the other database still holds (rows it
// lost), and the next create would give an unrelated product one of those
// ids, which sync would then merge with the lost row. Before a database
// takes its first create in a process, its sequences are moved past the
// highest id of its parity in either database. When the other database does
// not answer, they are moved past Ceiling(now) instead: above every id this
// database can have handed out before (see Ceiling), so creates go on.
package ids

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"dualsync/internal/domain"
	"dualsync/internal/store"
)

// ErrUnchecked is in the chain of a create refused because the database's
// ids could be checked neither against the other database nor moved past
// the ceiling (this database does not answer either).
var ErrUnchecked = errors.New("ids not yet checked against the other database")

// ceilingEpoch starts the ceiling's clock.
var ceilingEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// Ceiling is an id above every id a database can have allocated by t: two
// per millisecond since 2024 (about 1.1e11 in 2026). Sequences start at 1
// or 2 and grow by 2 per create; every move past the ceiling lands on it, so
// a sequence stays below the ceiling as long as creates on one database
// average under 1,000 a second since its last move. An id taken from past
// the ceiling can therefore be none a lost row had, whatever the other
// database holds.
func Ceiling(t time.Time) int64 { return 2 * t.Sub(ceilingEpoch).Milliseconds() }

// Parity is the parity (id % 2) of the ids a database in role r allocates.
func Parity(r store.Role) int64 {
	if r == store.RoleFallback {
		return 0
	}
	return 1
}

// Check moves own's sequences past the highest id of own's parity that own
// or other holds. It fails when either database does not answer: then
// nothing says which ids other still holds.
func Check(ctx context.Context, own, other store.DB) error {
	if intact(ctx, own, other) {
		return nil
	}
	parity := Parity(own.Role())
	for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		top, err := other.MaxID(ctx, e, parity)
		if err != nil {
			return fmt.Errorf("highest %s id of the %s's parity in the %s: %w", e, own.Role(), other.Role(), err)
		}
		if err := own.AdvanceSequence(ctx, e, top); err != nil {
			return fmt.Errorf("move the %s's %s sequence past %d: %w", own.Role(), e, top, err)
		}
	}
	return nil
}

// intact reports whether own holds the latest mark of its history that
// other recorded (docs/merge.md), and other knows of no regression: then
// every row other got from own was read before that mark, so own holds it
// and its sequences are past its id already. Two primary-key reads, where
// MaxID may scan a whole index (highest even id in a primary that never got
// one). Any error or doubt says no: Check then compares ids.
func intact(ctx context.Context, own, other store.DB) bool {
	p, err := other.Peer(ctx, own.Role())
	if err != nil || p.Seen.IsZero() || p.Regressed() {
		return false
	}
	has, err := own.HasMark(ctx, p.Seen)
	return err == nil && has
}

// Options tune a Guard; zero values take defaults.
type Options struct {
	Logger *slog.Logger
	// Retry is the least time between two checks a create triggers
	// (default 2s), so that refused creates do not each query the other
	// database while it is down.
	Retry time.Duration
}

// Guard is a database whose creates wait for its ids to be safe once (Check,
// or a move past the ceiling); every other operation passes straight
// through.
type Guard struct {
	store.DB
	other store.DB
	o     Options

	mu      sync.Mutex
	checked bool // against the other database
	open    bool // creates may go on: checked, or moved past the ceiling
	tried   time.Time
}

// NewGuard wraps own; other is the database its ids are checked against.
func NewGuard(own, other store.DB, o Options) *Guard {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Retry <= 0 {
		o.Retry = 2 * time.Second
	}
	return &Guard{DB: own, other: other, o: o}
}

// Checked reports whether the ids were checked against the other database.
func (g *Guard) Checked() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.checked
}

// Ensure checks now unless done already (or tried within Retry, when
// force is false); it returns nil once creates are open: checked against
// the other database, or, while that does not answer, moved past the
// ceiling.
func (g *Guard) Ensure(ctx context.Context, force bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.checked || (g.open && !force) {
		return nil
	}
	if !force && time.Since(g.tried) < g.o.Retry {
		return g.refused(nil)
	}
	g.tried = time.Now()
	err := Check(ctx, g.DB, g.other)
	if err == nil {
		g.checked, g.open = true, true
		g.o.Logger.Info("ids checked against the other database; creates open", "database", string(g.Role()))
		return nil
	}
	if g.open {
		return err // past the ceiling already: creates stay open
	}
	// The other database does not answer: nothing says which ids it
	// holds, so new ids come from past every id this one has handed out.
	ceiling := Ceiling(time.Now())
	for _, e := range []domain.Entity{domain.EntityProduct, domain.EntityUser} {
		if cerr := g.DB.AdvanceSequence(ctx, e, ceiling+(Parity(g.Role())-ceiling%2+2)%2); cerr != nil {
			g.o.Logger.Warn("creates on this database wait: its ids could not be checked", "database", string(g.Role()), "err", errors.Join(err, cerr))
			return g.refused(errors.Join(err, cerr))
		}
	}
	g.open = true
	g.o.Logger.Warn("the other database does not answer: new ids on this one start past the ceiling, above any it has handed out",
		"database", string(g.Role()), "ceiling", ceiling, "err", err)
	return nil
}

// refused is the error of a create refused before the ids are safe: unavailable,
// nothing written (so the failover wrapper may try the other database), and
// busy rather than down (so its breaker stays as it is).
func (g *Guard) refused(cause error) error {
	err := fmt.Errorf("%w: %w: %w", ErrUnchecked, store.ErrUnreached, store.ErrBusy)
	if cause != nil {
		err = fmt.Errorf("%w: %w", err, cause)
	}
	return domain.Wrap(domain.KindUnavailable, err,
		fmt.Sprintf("the %s database cannot take new rows until its ids are checked", g.Role()))
}

// Run checks at once, and then every interval while neither the check nor
// the move past the ceiling could run (this database down too), until
// creates are open or ctx ends: creates need not wait for the first one.
func (g *Guard) Run(ctx context.Context, interval time.Duration) {
	for {
		c, cancel := context.WithTimeout(ctx, interval)
		err := g.Ensure(c, true)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

func (g *Guard) CreateProduct(ctx context.Context, c domain.ProductChange) (domain.Product, error) {
	if err := g.Ensure(ctx, false); err != nil {
		return domain.Product{}, err
	}
	return g.DB.CreateProduct(ctx, c)
}

func (g *Guard) CreateUser(ctx context.Context, c domain.UserChange) (domain.User, error) {
	if err := g.Ensure(ctx, false); err != nil {
		return domain.User{}, err
	}
	return g.DB.CreateUser(ctx, c)
}
