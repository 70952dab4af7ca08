package explore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"dualsync/internal/domain"
	"dualsync/internal/syncer"
)

// maxDequeue is host.json's maxDequeueCount: a message that fails this many
// deliveries goes to the poison handler.
const maxDequeue = 5

// message is one queue message: an item message (syncer.Message) or a
// planner message (syncer.PlanMessage), with what the queue knows of it.
type message struct {
	id      string
	body    any
	dequeue int // deliveries so far
}

func (m *message) String() string { return describe(m.body) }

func describe(body any) string {
	switch b := body.(type) {
	case poison:
		return "poison(" + describe(b.body) + ")"
	case syncer.Message:
		run := ""
		if b.Run != "" {
			run = " run " + shortRun(b.Run)
		}
		return fmt.Sprintf("%s %v%s", b.Entity, b.Items(), run)
	case syncer.PlanMessage:
		if b.UpTo > 0 {
			return fmt.Sprintf("range (%d,%d] run %s", b.After, b.UpTo, shortRun(b.Run))
		}
		return fmt.Sprintf("plan after %d run %s", b.After, shortRun(b.Run))
	}
	return fmt.Sprint(body)
}

func shortRun(id string) string {
	if len(id) > 6 {
		return id[len(id)-6:]
	}
	return id
}

// Queue holds the messages of both queues (product-sync and sync-plan) in
// one list: the explorer delivers them in an order of its choosing, which
// covers any interleaving the two real queues allow.
type Queue struct {
	mu   sync.Mutex
	msgs []*message
	next int
	Down bool // Send fails (the queue service does not answer)
}

// Send enqueues v (syncer.Message or syncer.PlanMessage).
func (q *Queue) Send(ctx context.Context, v any) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.Down {
		return domain.Errorf(domain.KindUnavailable, "explore queue: down")
	}
	switch v.(type) {
	case syncer.Message, syncer.PlanMessage:
	default:
		return domain.Errorf(domain.KindInternal, "explore queue: unexpected message %T", v)
	}
	q.add(v)
	return nil
}

func (q *Queue) add(v any) *message {
	q.next++
	m := &message{id: fmt.Sprintf("m%d", q.next), body: v}
	q.msgs = append(q.msgs, m)
	return m
}

// len returns how many messages wait.
func (q *Queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.msgs)
}

// pick returns the i-th waiting message (modulo), nil if none.
func (q *Queue) pick(i int) *message {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.msgs) == 0 {
		return nil
	}
	return q.msgs[i%len(q.msgs)]
}

// remove deletes m (a delivery that succeeded, or a poisoned message).
func (q *Queue) remove(m *message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = slices.DeleteFunc(q.msgs, func(x *message) bool { return x == m })
}

// duplicate enqueues a copy of m as a new message (a sender that sent twice).
func (q *Queue) duplicate(m *message) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.add(m.body)
}
