// Package queue is the azqueue adapter: it creates queues and enqueues JSON
// messages in the encoding the Functions host expects (host.json
// extensions.queues.messageEncoding, base64 by default).
package queue

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"

	"dualsync/internal/domain"
)

// Queue is one storage queue.
type Queue struct {
	client *azqueue.QueueClient
	name   string
	base64 bool
}

// New returns the queue `name` of svc; base64 says whether message bodies
// are base64-encoded (as the host decodes them when messageEncoding=base64).
func New(svc *azqueue.ServiceClient, name string, base64 bool) *Queue {
	return &Queue{client: svc.NewQueueClient(name), name: name, base64: base64}
}

// Name returns the queue's name.
func (q *Queue) Name() string { return q.name }

// Client returns the underlying azqueue client (for tests and peeking).
func (q *Queue) Client() *azqueue.QueueClient { return q.client }

// Ensure creates the queue if it does not exist.
func (q *Queue) Ensure(ctx context.Context) error {
	_, err := q.client.Create(ctx, nil)
	if err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		return domain.Wrap(domain.KindUnavailable, err, "Queue Storage is unavailable: create queue "+q.name)
	}
	return nil
}

// Encode returns the message body Send would enqueue for v.
func (q *Queue) Encode(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", domain.Wrap(domain.KindInternal, err, "encode message for queue "+q.name)
	}
	if q.base64 {
		return base64.StdEncoding.EncodeToString(b), nil
	}
	return string(b), nil
}

// Send enqueues v as JSON.
func (q *Queue) Send(ctx context.Context, v any) error {
	body, err := q.Encode(v)
	if err != nil {
		return err
	}
	_, err = q.client.EnqueueMessage(ctx, body, nil)
	if queueerror.HasCode(err, queueerror.QueueNotFound) {
		// Created on first use, so the handler starts even while storage is down.
		if err := q.Ensure(ctx); err != nil {
			return err
		}
		_, err = q.client.EnqueueMessage(ctx, body, nil)
	}
	if err != nil {
		return domain.Wrap(domain.KindUnavailable, err, "Queue Storage is unavailable: enqueue to queue "+q.name)
	}
	return nil
}

// Decode reverses Encode: it unwraps base64 if configured and unmarshals
// the JSON body into v.
func (q *Queue) Decode(body string, v any) error {
	b := []byte(body)
	if q.base64 {
		d, err := base64.StdEncoding.DecodeString(body)
		if err != nil {
			return domain.Wrap(domain.KindInvalid, err, "queue "+q.name+": message is not base64")
		}
		b = d
	}
	if err := json.Unmarshal(b, v); err != nil {
		return domain.Wrap(domain.KindInvalid, err, "queue "+q.name+": message is not JSON")
	}
	return nil
}

// OldestInsertion returns when the message at the front of the queue was
// enqueued; ok is false when no message is waiting (messages being
// processed are invisible and not counted). The outbox relay uses it to
// tell a message still waiting in a backlog from one that was lost.
func (q *Queue) OldestInsertion(ctx context.Context) (at time.Time, ok bool, err error) {
	one := int32(1)
	resp, err := q.client.PeekMessages(ctx, &azqueue.PeekMessagesOptions{NumberOfMessages: &one})
	if queueerror.HasCode(err, queueerror.QueueNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, domain.Wrap(domain.KindUnavailable, err, "Queue Storage is unavailable: peek queue "+q.name)
	}
	if len(resp.Messages) == 0 || resp.Messages[0].InsertionTime == nil {
		return time.Time{}, false, nil
	}
	return resp.Messages[0].InsertionTime.UTC(), true, nil
}
