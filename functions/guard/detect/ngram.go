package detect

import (
	_ "embed"
	"encoding/binary"
	"math"
	"sort"
	"strconv"
)

// The n-gram model is a logistic regression over hashed character 3- to 5-grams of the
// normalized text, trained by cmd/train on the evaluation set's dev split and committed as
// ngram_model.bin (little-endian float32: the bias, then NgramBuckets weights). It scores
// windows of ngramWindow bytes and keeps the best, so an attack buried in a long document is
// scored on its own words; its finding names the n-grams that weighed most.

// NgramBuckets is the number of hashed features.
const NgramBuckets = 1 << 15

const (
	ngramMin, ngramMax = 3, 5
	ngramWindow        = 256
)

//go:embed ngram_model.bin
var ngramModelBytes []byte

var ngramBias, ngramWeights = func() (float32, []float32) {
	if len(ngramModelBytes) != 4*(NgramBuckets+1) {
		return 0, nil
	}
	w := make([]float32, NgramBuckets+1)
	for i := range w {
		w[i] = math.Float32frombits(binary.LittleEndian.Uint32(ngramModelBytes[4*i:]))
	}
	return w[0], w[1:]
}()

// NgramFeatures calls f with the bucket of every character n-gram of text's normalized form
// and the n-gram's start in it; cmd/train extracts its features with it.
func NgramFeatures(text string, f func(bucket uint32, start int)) {
	ngramFeatures(normalize(text).text, f)
}

func ngramFeatures(t string, f func(bucket uint32, start int)) {
	for i := 0; i+ngramMin <= len(t); i++ {
		h := uint32(2166136261)
		for n := 1; n <= ngramMax && i+n <= len(t); n++ {
			h ^= uint32(t[i+n-1])
			h *= 16777619
			if n >= ngramMin {
				f((h^uint32(n))%NgramBuckets, i)
			}
		}
	}
}

// ngramScore is the model's probability for the best window of the normalized text, that
// window's span in it, and, when the probability is over classifierFrom, the n-grams that
// weighed most there.
func ngramScore(t string) (p float64, start, end int, top []string) {
	if ngramWeights == nil || len(t) < ngramMin {
		return 0, 0, 0, nil
	}
	work(len(t) * (ngramMax - ngramMin + 1))
	// contribution of the n-grams starting at each byte, and their prefix sums
	c := make([]float32, len(t)+1)
	ngramFeatures(t, func(b uint32, i int) { c[i+1] += ngramWeights[b] })
	for i := 1; i <= len(t); i++ {
		c[i] += c[i-1]
	}
	w := min(ngramWindow, len(t))
	best, bs := float32(math.Inf(-1)), 0
	for s := 0; s+w <= len(t); s++ {
		if v := c[s+w] - c[s]; v > best {
			best, bs = v, s
		}
	}
	p = 1 / (1 + math.Exp(-float64(ngramBias+best)))
	if p <= classifierFrom {
		return p, bs, bs + w, nil
	}
	// The heaviest n-grams of the best window, for the reasons.
	type gram struct {
		w float32
		s string
	}
	var gs []gram
	seen := map[string]bool{}
	win := t[bs : bs+w]
	for i := 0; i+ngramMax <= len(win); i++ {
		g := win[i : i+ngramMax]
		if seen[g] {
			continue
		}
		seen[g] = true
		var h uint32 = 2166136261
		for n := 1; n <= ngramMax; n++ {
			h ^= uint32(g[n-1])
			h *= 16777619
		}
		gs = append(gs, gram{ngramWeights[(h^uint32(ngramMax))%NgramBuckets], g})
	}
	sort.Slice(gs, func(i, j int) bool { return gs[i].w > gs[j].w })
	for _, g := range gs[:min(3, len(gs))] {
		top = append(top, strconv.Quote(g.s))
	}
	return p, bs, bs + w, top
}
