// Command explore runs the history explorer (internal/explore): random
// histories over both databases and the real sync engine, each checked
// against a model of README's guarantees. It prints the number of
// histories and violations, counts per kind, and each kind's first failing
// history shrunk to a minimal one.
//
//	go run ./cmd/explore -n 100000
package main

import (
	"flag"
	"fmt"
	"os"
	"slices"

	"dualsync/internal/explore"
)

func main() {
	n := flag.Int("n", 100000, "histories to explore")
	seed := flag.Uint64("seed", 1, "seed of the first history (history i has seed+i)")
	workers := flag.Int("workers", 0, "histories run at once (0: one per CPU)")
	stop := flag.Int("stop", 0, "stop after this many failing histories (0: never)")
	one := flag.Bool("one", false, "run only the history of -seed and print its steps")
	flag.Parse()
	if *one {
		out := explore.Run(explore.Generate(*seed))
		for _, s := range out.Steps {
			fmt.Println(s)
		}
		for _, v := range out.Violations {
			fmt.Println("VIOLATION", v)
		}
		return
	}
	rep := explore.Explore(explore.Options{N: *n, Seed: *seed, Workers: *workers, Shrink: true, StopAfter: *stop})
	fmt.Printf("histories: %d, violations: %d (%.0f histories/s, %d with a restore or rebuild)\n",
		rep.Histories, rep.Violations, float64(rep.Histories)/rep.Elapsed.Seconds(), rep.Restored)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range rep.Kinds {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Printf("  %s: %d (first at seed %d)\n", k, rep.Kinds[k], rep.First[k])
	}
	for _, f := range rep.Failures {
		fmt.Println()
		fmt.Print(f)
	}
	if rep.Violations > 0 {
		os.Exit(1)
	}
}
