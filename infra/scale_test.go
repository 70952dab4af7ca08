package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"dualsync/internal/table"
)

// Azure's published targets docs/scale.md works from.
const (
	queueMessagesPerSecond     = 2000
	partitionEntitiesPerSecond = 2000
	entitiesPerItem            = 3 // a shard read, then the result and the shard's increment
)

// TestScaleArithmetic pins docs/scale.md's argument to the settings it is
// about: a run's partitions take at least twice what the item queue lets
// through, so the queue paces the sync and throttles before the table does,
// at any instance count; and the page names the partition default, the
// instance cap and the in-flight count that the Bicep and host.json set.
func TestScaleArithmetic(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	intParam := func(file, name string) int {
		m := regexp.MustCompile(`(?m)^param ` + name + ` int = (\d+)`).FindStringSubmatch(read(file))
		if m == nil {
			t.Fatalf("%s: no default for param %s", file, name)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	parts := intParam("modules/app.bicep", "syncResultPartitions")
	if parts != table.DefaultPartitions {
		t.Errorf("Bicep SYNC_RESULT_PARTITIONS default %d, handler default %d", parts, table.DefaultPartitions)
	}
	if capacity := parts * partitionEntitiesPerSecond / entitiesPerItem; capacity < 2*queueMessagesPerSecond {
		t.Errorf("%d partitions take %d items/s, less than twice the queue's %d messages/s", parts, capacity, queueMessagesPerSecond)
	}
	instances := intParam("main.bicep", "maximumInstanceCount")
	// Flex Consumption's lowest maximumInstanceCount is 1 (it was 40 in preview).
	if m := regexp.MustCompile(`@minValue\((\d+)\)\s*\n(?:@[^\n]*\n)*param maximumInstanceCount`).FindStringSubmatch(read("main.bicep")); m == nil || m[1] != "1" {
		t.Errorf("main.bicep: maximumInstanceCount must allow Flex Consumption's lowest value, 1 (@minValue(1))")
	}
	var host struct {
		Extensions struct {
			Queues struct{ BatchSize, NewBatchThreshold int } `json:"queues"`
		} `json:"extensions"`
	}
	if err := json.Unmarshal([]byte(read("../host.json")), &host); err != nil {
		t.Fatal(err)
	}
	inFlight := host.Extensions.Queues.BatchSize + host.Extensions.Queues.NewBatchThreshold
	doc := strings.Join(strings.Fields(read("../docs/scale.md")), " ") // line breaks do not matter
	for _, want := range []string{
		fmt.Sprintf("default **%d**", parts),
		fmt.Sprintf("the Bicep sets **%d** per scale group", instances),
		fmt.Sprintf("%d instances × %d in flight", instances, inFlight),
	} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/scale.md does not say %q", want)
		}
	}
}
