package queue

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azqueue"

	"dualsync/internal/testenv"
)

type msg struct {
	Entity string `json:"entity"`
	ID     int64  `json:"id"`
	Run    string `json:"run"`
}

func TestSendDequeues(t *testing.T) {
	svc, err := azqueue.NewServiceClientFromConnectionString(testenv.Storage(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, b64 := range []bool{true, false} {
		name := "test-sync-" + testenv.RandomHex(6)
		if b64 {
			name += "-b64"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			q := New(svc, name, b64)
			t.Cleanup(func() { _, _ = q.Client().Delete(context.Background(), nil) })
			for range 2 { // Ensure must tolerate an existing queue
				if err := q.Ensure(ctx); err != nil {
					t.Fatal(err)
				}
			}
			want := msg{Entity: "product", ID: 42}
			if err := q.Send(ctx, want); err != nil {
				t.Fatal(err)
			}
			resp, err := q.Client().DequeueMessage(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Messages) != 1 || resp.Messages[0].MessageText == nil {
				t.Fatalf("dequeued %d messages, want 1", len(resp.Messages))
			}
			body := *resp.Messages[0].MessageText
			if _, err := base64.StdEncoding.DecodeString(body); (err == nil) != b64 {
				t.Fatalf("body %q: base64=%v expected", body, b64)
			}
			var got msg
			if err := q.Decode(body, &got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
		})
	}
}
