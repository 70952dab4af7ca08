package devhost

import (
	"context"
	"strings"
	"testing"
	"time"
)

// Queues deleted while the host runs are created again, as the Azure host
// creates what it needs: the trigger's queue (its listener finds it
// missing), an output queue and the poison queue (on the next message),
// and messages flow again.
func TestQueuesDeletedWhileRunningAreRecreated(t *testing.T) {
	dir := newApp(t, "basic")
	env := baseEnv(t)
	rt := startHost(t, dir, env, Options{})
	conn := env["AzureWebJobsStorage"]
	work := queueOf(t, conn, env["WorkQueue"])
	done := queueOf(t, conn, env["DoneQueue"])
	fail := queueOf(t, conn, env["FailQueue"])
	poison := queueOf(t, conn, env["FailQueue"]+"-poison")
	ctx := context.Background()
	toPoison := func(text string) {
		t.Helper()
		enqueue(t, fail, text)
		var moved []string
		waitFor(t, 30*time.Second, "the poison message", func() bool {
			if _, err := poison.GetProperties(ctx, nil); err != nil {
				return false
			}
			moved = append(moved, drain(t, poison)...)
			return len(moved) > 0
		})
		if moved[0] != text {
			t.Errorf("poison holds %q, want %q", moved, text)
		}
	}
	// Every queue in use before the wipe.
	enqueue(t, work, b64("before the wipe"))
	collect(t, done, 1, 20*time.Second)
	toPoison(b64(`{"note":"before"}`))

	for _, name := range []string{env["WorkQueue"], env["DoneQueue"], env["FailQueue"] + "-poison"} {
		if _, err := queueOf(t, conn, name).Delete(ctx, nil); err != nil {
			t.Fatalf("delete %s: %v", name, err)
		}
	}
	// The listener of Work finds its queue gone and creates it again.
	waitFor(t, 20*time.Second, "the work queue to be created again", func() bool {
		_, err := work.GetProperties(ctx, nil)
		return err == nil
	})
	enqueue(t, work, b64("after the wipe"))
	// Done, an output queue, was deleted too: the output creates it again.
	waitFor(t, 20*time.Second, "the output queue to be created again", func() bool {
		_, err := done.GetProperties(ctx, nil)
		return err == nil
	})
	got := collect(t, done, 1, 20*time.Second)
	if !strings.Contains(got[0], `"got":"after the wipe"`) {
		t.Errorf("work output %s", got[0])
	}
	// A message that fails for good still reaches the (deleted) poison queue.
	toPoison(b64(`{"note":"after"}`))
	for _, name := range []string{env["WorkQueue"], env["DoneQueue"], env["FailQueue"] + "-poison"} {
		if !strings.Contains(rt.log.String(), "Queue '"+name+"' was missing") {
			t.Errorf("the log does not say %s was created again", name)
		}
	}
}
