package detect

import "sync/atomic"

// The detectors count the bytes they examine (their own loops and the input each regular
// expression runs over) when counting is on, so tests can check that the work is linear in the
// input without timing anything. Counting is off outside tests and costs one branch.
var (
	countingWork bool
	workDone     atomic.Int64
)

func work(n int) {
	if countingWork {
		workDone.Add(int64(n))
	}
}
