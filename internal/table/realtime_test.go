package table

import (
	"testing"

	"dualsync/internal/domain"
)

// A cursor inside a bucket restarts its read at the bucket's first id.
func TestBucketStart(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{itemKey("result", domain.EntityProduct, 70), itemKey("result", domain.EntityProduct, 64)},
		{itemKey("result", domain.EntityProduct, 64), itemKey("result", domain.EntityProduct, 64)},
		{itemKey("result", domain.EntityUser, 63), itemKey("result", domain.EntityUser, 0)},
		{"result-product-abc", ""},
		{"error-product-0000000000000000070", ""},
		{"result", ""},
	} {
		if got := bucketStart(tc.key); got != tc.want {
			t.Errorf("bucketStart(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// Consecutive ids share a bucket; the day's buckets spread over its 16
// bucket partitions whichever parity the ids have.
func TestBucketOf(t *testing.T) {
	day := "realtime-20261129"
	p1, f1 := bucketOf(day, 1)
	p63, f63 := bucketOf(day, 63)
	if p1 != p63 || f1 != 0 || f63 != 0 {
		t.Errorf("ids 1 and 63: %s/%d and %s/%d, want one bucket from 0", p1, f1, p63, f63)
	}
	if _, f := bucketOf(day, 64); f != 64 {
		t.Errorf("id 64 starts bucket %d, want 64", f)
	}
	seen := map[string]bool{}
	for id := int64(1); id < 64*200; id += 128 { // odd ids, every other bucket
		p, _ := bucketOf(day, id)
		if !bucketPartition.MatchString(p) {
			t.Fatalf("partition %q is not a bucket partition", p)
		}
		seen[p] = true
	}
	if len(seen) != RealtimePartitions {
		t.Errorf("100 buckets in %d partitions, want %d", len(seen), RealtimePartitions)
	}
}
