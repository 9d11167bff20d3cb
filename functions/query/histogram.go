package query

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// Histogram metrics: equal-width bins with exact counts, one set of edges for the whole
// answer so that the groups' histograms compare. A first statement reads the measure's
// minimum and maximum over the rows the answer reads (rawFrom); the answer's statement then
// counts each group's rows per bin, the edges bound as parameters.

const (
	defaultBins = 10
	maxBins     = 100
)

// histogram is a histogram metric's measure: value per row (Float64), counted where cond
// holds (when set; the measure's timingCond, as for min, max and avg).
type histogram struct {
	value, cond string
}

// histBin is one bin of an answer: values from lower (inclusive) to upper (exclusive, but for
// the last bin, which ends at the maximum and includes it).
type histBin struct {
	Lower float64 `json:"lower"`
	Upper float64 `json:"upper"`
	Count uint64  `json:"count"`
}

// histBins are the edges of one histogram metric in an answer: n bins of width from lower, the
// last ending at upper (the maximum). n is 0 when no row has the measure.
type histBins struct {
	lower, upper, width float64
	n                   int
}

// newHistBins are up to bins bins from lo to hi (the minimum and maximum of the rows' values). One
// bin when lo == hi; fewer than asked when the range is so narrow for its magnitude that
// narrower bins would not be at least 4 units in the last place wide (then the bin SQL picks
// every value's bin exactly: see countsSQL).
func newHistBins(lo, hi float64, rows uint64, bins int) histBins {
	if rows == 0 {
		return histBins{}
	}
	m := math.Max(math.Abs(lo), math.Abs(hi))
	ulp := math.Nextafter(m, math.Inf(1)) - m
	if math.IsInf(ulp, 0) { // m is the largest float
		ulp = m - math.Nextafter(m, 0)
	}
	n := bins
	for n > 1 && !((hi-lo)/float64(n) >= 4*ulp && !math.IsInf(hi-lo, 0)) {
		n--
	}
	if n == 1 { // one bin has no width to compute (countsSQL divides by none)
		return histBins{lower: lo, upper: hi, n: 1}
	}
	return histBins{lower: lo, upper: hi, width: (hi - lo) / float64(n), n: n}
}

// edge is the lower edge of bin i (the same arithmetic as countsSQL's).
func (b histBins) edge(i int) float64 { return b.lower + float64(i)*b.width }

// bins are the answer's bins with counts. byBin is what countsSQL answers: the indexes of the
// bins that have rows, then their counts; index n holds the rows without the measure.
func (b histBins) bins(byBin []uint64) []histBin {
	out := make([]histBin, b.n)
	for i := range out {
		out[i] = histBin{Lower: b.edge(i), Upper: b.upper}
		if i+1 < b.n {
			out[i].Upper = b.edge(i + 1)
		}
	}
	k := len(byBin) / 2
	for j, bin := range byBin[:k] {
		if bin < uint64(b.n) {
			out[bin].Count = byBin[k+j]
		}
	}
	return out
}

// rangeSQL are the minimum, maximum and number of the rows' values.
func (h *histogram) rangeSQL() []string {
	if h.cond == "" {
		return []string{"toFloat64(min(" + h.value + "))", "toFloat64(max(" + h.value + "))", "count()"}
	}
	return []string{"toFloat64(minIf(" + h.value + ", " + h.cond + "))", "toFloat64(maxIf(" + h.value + ", " + h.cond + "))", "countIf(" + h.cond + ")"}
}

// countsSQL counts a group's rows per bin of b, as one Array(UInt64): the bins that have rows,
// then their counts (see bins). A row's bin is b.n for a row without the measure or outside
// the edges (one inserted after the range was read), else floor((v - lower) / width), moved by
// one where the edges, computed as edge does, say so: with bins at least 4 units in the last
// place wide the quotient is off by less than one, so each value is counted in the bin whose
// edges hold it. The last bin takes the maximum. The rows are counted by bin with one sumMap:
// one pass whatever the number of bins (a countIf per bin costs three times as much at 100
// bins on 18.16). With no bins (b.n 0) every row's bin is 0, which bins ignores.
func (h *histogram) countsSQL(alias string, b histBins) (string, []any) {
	in := "? <= " + h.value + " AND " + h.value + " <= ?"
	if h.cond != "" {
		in = h.cond + " AND " + in
	}
	n, args := b.n, []any{b.lower, b.upper}
	idx := "0"
	if n > 1 {
		q := "floor((" + h.value + " - ?) / ?)"
		idx = fmt.Sprintf("least((%s AS %s_q) - (%s < ? + %s_q * ?) + (%s >= ? + (%s_q + 1) * ?), %d)", q, alias, h.value, alias, h.value, alias, n-1)
		args = append(args, b.lower, b.width, b.lower, b.width, b.lower, b.width)
	}
	byBin := fmt.Sprintf("sumMap([toUInt64(if(%s, %s, %d))], [toUInt64(1)]) AS %s_bins", in, idx, n, alias)
	return fmt.Sprintf("arrayConcat(tupleElement((%s), 1), tupleElement(%s_bins, 2))", byBin, alias), args
}

// histograms reads the range of each histogram metric of p over the rows the answer reads, in
// one statement, and returns each one's bins by alias; nil when p has none.
func (r *reader) histograms(ctx context.Context, pr authclient.Principal, p *metricsPlan) (map[string]histBins, error) {
	var sel, aliases []string
	for _, m := range p.metrics {
		if m.expr.hist != nil {
			sel = append(sel, m.expr.hist.rangeSQL()...)
			aliases = append(aliases, m.alias)
		}
	}
	if len(aliases) == 0 {
		return nil, nil
	}
	from, args := r.rawFrom(pr, p, nil)
	rs, err := r.conn.Query(r.ctx(ctx), "SELECT "+strings.Join(sel, ", ")+" FROM "+from, args...)
	if err != nil {
		return nil, classify(err)
	}
	defer rs.Close()
	lo, hi, n := make([]float64, len(aliases)), make([]float64, len(aliases)), make([]uint64, len(aliases))
	var targets []any
	for i := range aliases {
		targets = append(targets, &lo[i], &hi[i], &n[i])
	}
	out := make(map[string]histBins, len(aliases))
	for rs.Next() {
		if err := rs.Scan(targets...); err != nil {
			return nil, err
		}
		for i, a := range aliases {
			out[a] = newHistBins(lo[i], hi[i], n[i], p.bins)
		}
	}
	return out, classify(rs.Err())
}
