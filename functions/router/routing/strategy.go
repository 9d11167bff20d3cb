package routing

import (
	"slices"
	"sort"
)

// order is the sequence a call tries a route's targets in.
func (r *Router) order(rt *Route) []*Target {
	switch rt.strategy {
	case StrategyWeighted:
		rest := slices.Clone(rt.targets)
		out := make([]*Target, 0, len(rest))
		for len(rest) > 0 {
			total := 0
			for _, t := range rest {
				total += t.weight
			}
			pick := r.intN(total)
			for i, t := range rest {
				if pick < t.weight {
					out = append(out, t)
					rest = slices.Delete(rest, i, i+1)
					break
				}
				pick -= t.weight
			}
		}
		return out
	case StrategyLeastLatency:
		out := slices.Clone(rt.targets)
		lat := make(map[*Target]float64, len(out))
		for _, t := range out {
			lat[t] = r.breaker(t.id).latency()
		}
		// Targets never measured (0) come first, so every target gets measured.
		sort.SliceStable(out, func(i, j int) bool { return lat[out[i]] < lat[out[j]] })
		return out
	}
	return rt.targets
}
