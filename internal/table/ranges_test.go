package table

import (
	"slices"
	"sync"
	"testing"
)

// A range is counted once, however often and however concurrently its
// message is delivered; its differing ids come back as recorded; a run of
// one partition and one of eight count alike.
func TestRecordRangeCountsOnce(t *testing.T) {
	for _, parts := range []int{1, DefaultPartitions} {
		s := sharedStore(t)
		c := ctx(t)
		run := createRunP(t, s, parts)
		ranges := []RangeRecord{
			{After: 0, UpTo: 100, Items: 7, Equal: 4, Differ: []int64{3, 50, 99}},
			{After: 100, UpTo: 250, Items: 5, Equal: 5, Differ: []int64{}},
			{After: 250, UpTo: 300, Items: 2, Equal: 0, Differ: []int64{251, 300}},
		}
		var wg sync.WaitGroup
		recorded := make([]int, len(ranges))
		var mu sync.Mutex
		for i, r := range ranges {
			for range 3 { // three deliveries of each range at once
				wg.Go(func() {
					ok, err := s.RecordRange(c, run.ID, r)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						mu.Lock()
						recorded[i]++
						mu.Unlock()
					}
				})
			}
		}
		wg.Wait()
		for i, n := range recorded {
			if n != 1 {
				t.Errorf("P=%d: range %d recorded %d times, want 1", parts, i, n)
			}
		}
		p, err := s.Progress(c, run.ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Ranges != 3 || p.Items != 14 || p.Compared != 9 || p.Counts[StatusUnchanged] != 9 || p.Done != 9 || p.Counts[StatusDiffers] != 0 {
			t.Errorf("P=%d: progress = %+v", parts, p)
		}
		got, ok, err := s.GetRange(c, run.ID, 0)
		if err != nil || !ok || got.UpTo != 100 || got.Items != 7 || got.Equal != 4 || got.Done || !slices.Equal(got.Differ, []int64{3, 50, 99}) {
			t.Fatalf("P=%d: GetRange = %+v %v %v", parts, got, ok, err)
		}
		if err := s.MarkRangeDone(c, run.ID, 0); err != nil {
			t.Fatal(err)
		}
		if got, _, _ = s.GetRange(c, run.ID, 0); !got.Done || !slices.Equal(got.Differ, []int64{3, 50, 99}) {
			t.Errorf("P=%d: after MarkRangeDone: %+v", parts, got)
		}
		if got, ok, err = s.GetRange(c, run.ID, 100); err != nil || !ok || len(got.Differ) != 0 {
			t.Errorf("P=%d: range 100 = %+v %v %v", parts, got, ok, err)
		}
		if _, ok, err := s.GetRange(c, run.ID, 999); ok || err != nil {
			t.Errorf("P=%d: unrecorded range: %v %v", parts, ok, err)
		}
		// Results list no range entity: only items have results.
		rs, _, err := s.Results(c, run.ID, "", 100, "")
		if err != nil || len(rs) != 0 {
			t.Errorf("P=%d: results = %+v %v", parts, rs, err)
		}
	}
}

func TestRecordRangeRejectsBadCounts(t *testing.T) {
	s := sharedStore(t)
	run := createRun(t, s)
	for _, r := range []RangeRecord{
		{After: 10, UpTo: 10, Items: 0},
		{After: 0, UpTo: 10, Items: 3, Equal: 1, Differ: []int64{2}},
		{After: 0, UpTo: 10, Items: 2, Equal: 0, Differ: []int64{5, 2}},
		{After: 5, UpTo: 10, Items: 1, Equal: 0, Differ: []int64{5}},
	} {
		if _, err := s.RecordRange(ctx(t), run.ID, r); err == nil {
			t.Errorf("RecordRange(%+v): no error", r)
		}
	}
	if p, err := s.Progress(ctx(t), run.ID); err != nil || p.Ranges != 0 {
		t.Errorf("a rejected range was counted: %+v %v", p, err)
	}
}
