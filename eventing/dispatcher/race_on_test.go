//go:build race

package dispatcher

// raceEnabled: Knative's all/any filters race with their own reordering goroutine (they read
// a counter non-atomically), so the cross-check against them is left out under -race.
const raceEnabled = true
