package devhost

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue/queueerror"
)

// DevelopmentStorage is what UseDevelopmentStorage=true stands for: Azurite's
// well-known account on its default ports (Azurite's documented development account). The Go SDK does not
// expand the shortcut itself.
const DevelopmentStorage = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;" +
	"AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
	"BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;" +
	"TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"

// connectionString resolves a binding's connection setting name (default
// AzureWebJobsStorage). Like the WebJobs SDK it tries AzureWebJobs<name>
// before <name>.
func (a *app) connectionString(name string) (string, error) {
	if name == "" {
		name = "AzureWebJobsStorage"
	}
	for _, key := range []string{"AzureWebJobs" + name, name} {
		v, ok := a.settings.get(key)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		v = strings.TrimSpace(v)
		if strings.EqualFold(v, "UseDevelopmentStorage=true") || strings.HasPrefix(strings.ToLower(v), "usedevelopmentstorage=true;") {
			return DevelopmentStorage, nil
		}
		return v, nil
	}
	for _, suffix := range []string{"__queueServiceUri", "__serviceUri", "__accountName"} {
		if _, ok := a.settings.get(name + suffix); ok {
			return "", fmt.Errorf("connection %q is identity-based (%s%s); devhost supports connection strings only: set %s to a connection string or UseDevelopmentStorage=true",
				name, name, suffix, name)
		}
	}
	return "", fmt.Errorf("connection %q: no app setting %q (environment or local.settings.json Values); set it to a connection string or UseDevelopmentStorage=true", name, name)
}

type queueClient = azqueue.QueueClient

// queueClients caches one client per connection and queue; the queue is
// created on first use, as the host does for triggers and outputs.
type queueClients struct {
	app     *app
	mu      sync.Mutex
	clients map[string]*queueClient
}

func (q *queueClients) get(ctx context.Context, conn, name string) (*queueClient, error) {
	key := lower(conn) + "|" + name
	q.mu.Lock()
	c := q.clients[key]
	q.mu.Unlock()
	if c != nil {
		return c, nil
	}
	cs, err := q.app.connectionString(conn)
	if err != nil {
		return nil, err
	}
	c, err = azqueue.NewQueueClientFromConnectionString(cs, name, nil)
	if err != nil {
		return nil, fmt.Errorf("connection %q: %w", conn, err)
	}
	if _, err := c.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		return nil, fmt.Errorf("create queue %q: %w", name, err)
	}
	q.mu.Lock()
	q.clients[key] = c
	q.mu.Unlock()
	return c, nil
}

// enqueue sends text to the named queue, creating the queue again if it
// went away while the host ran (a wiped Azurite, a queue deleted by hand):
// the host creates the queues it needs, so a missing one is recreated, not
// a lasting failure.
func (q *queueClients) enqueue(ctx context.Context, log *logger, conn, name, text string) error {
	c, err := q.get(ctx, conn, name)
	if err != nil {
		return err
	}
	_, err = c.EnqueueMessage(ctx, text, nil)
	if queueerror.HasCode(err, queueerror.QueueNotFound) {
		if err = recreate(ctx, log, c, name); err == nil {
			_, err = c.EnqueueMessage(ctx, text, nil)
		}
	}
	return err
}

// recreate creates a queue that was found missing, and says so.
func recreate(ctx context.Context, log *logger, c *queueClient, name string) error {
	if _, err := c.Create(ctx, nil); err != nil && !queueerror.HasCode(err, queueerror.QueueAlreadyExists) {
		return fmt.Errorf("queue %q is missing and could not be created again: %w", name, err)
	}
	log.printf("Queue '%s' was missing (deleted while the host ran): created it again.", name)
	return nil
}

const minPollingInterval = 100 * time.Millisecond // QueuePollingIntervals.Minimum

type queueListener struct {
	h      *Host
	fn     *function
	q      *queueClient
	poison string // "" when the queue has no poison queue

	mu      sync.Mutex
	running int
	changed chan struct{}
}

func (h *Host) newQueueListener(ctx context.Context, fn *function) (*queueListener, error) {
	q, err := h.queues.get(ctx, fn.Trigger.Connection, fn.Trigger.QueueName)
	if err != nil {
		return nil, fmt.Errorf("%s: queue trigger %q: %w", fn.File, fn.Trigger.QueueName, err)
	}
	l := &queueListener{h: h, fn: fn, q: q, changed: make(chan struct{}, 1)}
	// QOPT: no poison queue for names already ending in -poison or too long to extend.
	if name := fn.Trigger.QueueName + "-poison"; !strings.HasSuffix(fn.Trigger.QueueName, "-poison") && len(name) <= 63 {
		l.poison = name
	}
	return l, nil
}

func (l *queueListener) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.running
}

func (l *queueListener) add(d int) {
	l.mu.Lock()
	l.running += d
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// nextDelay is the host's randomized exponential back-off between empty polls:
// from 100 ms doubling (±20%) up to maxPollingInterval.
func nextDelay(cur, limit time.Duration) time.Duration {
	if cur <= 0 {
		return min(minPollingInterval, limit)
	}
	n := time.Duration(float64(cur*2) * (0.8 + 0.4*rand.Float64()))
	return min(max(n, minPollingInterval), limit)
}

// run polls until ctx ends. A new batch is fetched only when no more than
// newBatchThreshold messages are still being processed (so at most
// batchSize + newBatchThreshold run at once).
func (l *queueListener) run(ctx context.Context) {
	opts := l.h.app.queues
	lease := int32(max(l.h.opts.QueueLease/time.Second, 1))
	var delay time.Duration
	failing := false
	for {
		for l.count() > opts.NewBatchThreshold {
			select {
			case <-l.changed:
			case <-ctx.Done():
				return
			}
		}
		if ctx.Err() != nil {
			return
		}
		n := int32(opts.BatchSize)
		resp, err := l.q.DequeueMessages(ctx, &azqueue.DequeueMessagesOptions{NumberOfMessages: &n, VisibilityTimeout: &lease})
		switch {
		case ctx.Err() != nil:
			return
		case queueerror.HasCode(err, queueerror.QueueNotFound):
			if err := recreate(ctx, l.h.log, l.q, l.fn.Trigger.QueueName); err != nil && !failing {
				l.h.log.printf("%s: %v (retrying)", l.fn.Name, err)
				failing = true
			}
			delay = nextDelay(delay, opts.MaxPollingInterval)
		case err != nil:
			if !failing {
				l.h.log.printf("%s: polling queue %q failed: %v (retrying)", l.fn.Name, l.fn.Trigger.QueueName, err)
			}
			failing = true
			delay = nextDelay(delay, opts.MaxPollingInterval)
		case len(resp.Messages) > 0:
			failing = false
			for _, m := range resp.Messages {
				l.add(1)
				l.h.inflight.Add(1)
				go l.process(m)
			}
			delay = minPollingInterval
		default:
			failing = false
			delay = nextDelay(delay, opts.MaxPollingInterval)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// leased is a message being processed; its pop receipt changes on renewal.
type leased struct {
	mu   sync.Mutex
	id   string
	pop  string
	text string
}

func (l *queueListener) process(m *azqueue.DequeuedMessage) {
	defer l.h.inflight.Done()
	defer l.add(-1)
	h, fn, opts := l.h, l.fn, l.h.app.queues
	msg := &leased{id: deref(m.MessageID), pop: deref(m.PopReceipt), text: deref(m.MessageText)}
	var dequeueCount int64
	if m.DequeueCount != nil {
		dequeueCount = *m.DequeueCount
	}
	// The invocation and its settlement finish even during shutdown.
	ctx := context.Background()

	// QueueProcessor.BeginProcessingMessageAsync: a message already past
	// maxDequeueCount (e.g. after a crash) goes straight to the poison queue.
	if l.poison != "" && dequeueCount > int64(opts.MaxDequeueCount) {
		l.toPoison(ctx, msg)
		return
	}

	renewCtx, stopRenew := context.WithCancel(ctx)
	renewDone := make(chan struct{})
	go func() { defer close(renewDone); l.renew(renewCtx, msg) }()

	reason := fmt.Sprintf("New queue message detected on '%s'.", fn.Trigger.QueueName)
	err := h.run(ctx, fn, reason, func(ctx context.Context, id string) error {
		h.log.printf("Trigger Details: MessageId: %s, DequeueCount: %d, InsertedOn: %s", msg.id, dequeueCount, timeOr(m.InsertionTime))
		payload, err := l.decode(msg.text)
		if err != nil {
			return err
		}
		var value any = string(payload)
		if fn.Trigger.DataType == "binary" {
			value = base64.StdEncoding.EncodeToString(payload)
		} else {
			// [inference] HOST-CTX rule 4 (the host's serialisation): the trigger binds
			// to string and the host serialises it with JsonConvert, so the text
			// arrives double-encoded ("\"hello\""). CH-DOC's sample shows single
			// encoding; the host source says double, and devhost follows the source.
			value = scalar(string(payload))
		}
		data := map[string]any{fn.Trigger.Name: value}
		msg.mu.Lock()
		pop := msg.pop
		msg.mu.Unlock()
		meta := map[string]any{
			"DequeueCount":    scalar(dequeueCount), // "1"
			"Id":              scalar(msg.id),       // "\"...\""
			"PopReceipt":      scalar(pop),
			"InsertionTime":   timeOr(m.InsertionTime),
			"ExpirationTime":  timeOr(m.ExpirationTime),
			"NextVisibleTime": timeOr(m.TimeNextVisible),
			"sys":             sysMeta(fn),
		}
		addJSONProperties(meta, payload)
		res, err := h.invokeEnvelope(ctx, fn, id, data, meta)
		if err != nil {
			return err
		}
		return h.writeOutputs(ctx, fn, res)
	})
	stopRenew()
	<-renewDone

	opCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch {
	case err == nil:
		if _, err := l.q.DeleteMessage(opCtx, msg.id, msg.pop, nil); err != nil && !goneAlready(err) {
			h.log.printf("%s: delete message %s: %v", fn.Name, msg.id, err)
		}
	case l.poison == "":
		// QueueProcessor: without a poison queue the failed message stays
		// invisible (until its lease ends) to avoid a fast infinite loop.
	case dequeueCount >= int64(opts.MaxDequeueCount):
		h.log.printf("Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.", opts.MaxDequeueCount, l.poison)
		l.toPoison(opCtx, msg)
	default:
		vis := int32(opts.VisibilityTimeout / time.Second)
		if _, err := l.q.UpdateMessage(opCtx, msg.id, msg.pop, msg.text, &azqueue.UpdateMessageOptions{VisibilityTimeout: &vis}); err != nil {
			h.log.printf("%s: release message %s: %v", fn.Name, msg.id, err)
		}
	}
}

// toPoison copies the message text unchanged (same encoding) to the poison
// queue and deletes the original.
func (l *queueListener) toPoison(ctx context.Context, msg *leased) {
	if err := l.h.queues.enqueue(ctx, l.h.log, l.fn.Trigger.Connection, l.poison, msg.text); err != nil {
		l.h.log.printf("%s: copy message %s to %s: %v", l.fn.Name, msg.id, l.poison, err)
		return
	}
	if _, err := l.q.DeleteMessage(ctx, msg.id, msg.pop, nil); err != nil && !goneAlready(err) {
		l.h.log.printf("%s: delete message %s: %v", l.fn.Name, msg.id, err)
	}
}

// goneAlready reports a delete that met no message: the SDK retried a
// delete that was carried out with its answer lost (or a lost renewal
// changed the pop receipt, and the message comes back once its lease ends,
// to be handled again: delivery is at least once). Either way there is
// nothing left to delete, so it is done, not an error to report.
func goneAlready(err error) bool {
	return queueerror.HasCode(err, queueerror.MessageNotFound, queueerror.PopReceiptMismatch)
}

// renew keeps the message invisible while it is processed, extending its
// visibility at half the lease, like the host's UpdateQueueMessageVisibilityCommand.
func (l *queueListener) renew(ctx context.Context, msg *leased) {
	lease := max(l.h.opts.QueueLease, time.Second)
	secs := int32(lease / time.Second)
	t := time.NewTicker(lease / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msg.mu.Lock()
		opCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := l.q.UpdateMessage(opCtx, msg.id, msg.pop, msg.text, &azqueue.UpdateMessageOptions{VisibilityTimeout: &secs})
		cancel()
		if err == nil && resp.PopReceipt != nil {
			msg.pop = *resp.PopReceipt
		} else if err != nil {
			l.h.log.printf("%s: renew visibility of message %s: %v", l.fn.Name, msg.id, err)
		}
		msg.mu.Unlock()
	}
}

// decode applies messageEncoding; a message that is not base64 under
// "base64" fails its invocation, as a binding error does in the host.
func (l *queueListener) decode(text string) ([]byte, error) {
	if l.h.app.queues.MessageEncoding == "none" {
		return []byte(text), nil
	}
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("Exception binding parameter '%s': The input is not a valid Base-64 string (host.json extensions.queues.messageEncoding is base64): %v",
			l.fn.Trigger.Name, err)
	}
	return b, nil
}

// addJSONProperties adds the top-level properties of a JSON object message
// to the metadata, as the host adds them to binding data. [inference] The
// standard keys (Id, DequeueCount, ...) win over same-named properties here,
// so the queue metadata stays reliable; a handler must not depend on either.
func addJSONProperties(meta map[string]any, payload []byte) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(payload, &obj) != nil {
		return
	}
	for k, v := range obj {
		taken := false
		for existing := range meta {
			if strings.EqualFold(existing, k) {
				taken = true
				break
			}
		}
		if taken || len(v) == 0 {
			continue
		}
		if v[0] == '{' || v[0] == '[' {
			meta[k] = v // objects stay objects (rule 3)
		} else {
			meta[k] = string(v) // primitives: their JSON text as a string (rule 4)
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func timeOr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return dotnetTime(t.UTC())
}
