// Command train fits the injection detector's n-gram model: a logistic regression over the
// hashed character n-grams detect.NgramFeatures extracts, on the short texts of the
// evaluation set's dev split (attacks against benign and hard-negative texts; the held-out
// split is never read), by full-batch gradient descent with L2 regularization, from zero
// weights, so a run gives the same weights every time. It writes
// functions/guard/detect/ngram_model.bin.
//
//	go run ./functions/guard/detect/cmd/train
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/guard/detect/internal/evalset"
)

func main() {
	dir := flag.String("dir", "functions/guard/detect/testdata/eval/dev", "training split")
	out := flag.String("out", "functions/guard/detect/ngram_model.bin", "weights file")
	epochs := flag.Int("epochs", 300, "gradient steps")
	rate := flag.Float64("rate", 0.5, "learning rate")
	l2 := flag.Float64("l2", 1e-3, "L2 regularization")
	flag.Parse()
	files, _ := filepath.Glob(filepath.Join(*dir, "*.jsonl"))
	type feature struct {
		bucket uint32
		count  float64
	}
	type example struct {
		feats []feature // sorted by bucket, so every run sums in the same order
		y     float64
	}
	var xs []example
	pos := 0
	for _, f := range files {
		rs, err := evalset.Read(f)
		if err != nil {
			log.Fatal(err)
		}
		for _, r := range rs {
			if r.Long || len(r.Text) > 1024 || !r.InScope("injection") {
				continue
			}
			y := 0.0
			if r.Attack != "" {
				y, pos = 1, pos+1
			}
			counts := map[uint32]float64{}
			detect.NgramFeatures(r.Text, func(b uint32, _ int) { counts[b]++ })
			var feats []feature
			for b, c := range counts {
				feats = append(feats, feature{b, c})
			}
			sort.Slice(feats, func(i, j int) bool { return feats[i].bucket < feats[j].bucket })
			xs = append(xs, example{feats, y})
		}
	}
	w := make([]float64, detect.NgramBuckets)
	var bias float64
	n := float64(len(xs))
	for e := 0; e < *epochs; e++ {
		grad := make([]float64, len(w))
		var gb, loss float64
		for _, x := range xs {
			z := bias
			for _, f := range x.feats {
				z += w[f.bucket] * f.count
			}
			p := 1 / (1 + math.Exp(-z))
			d := p - x.y
			gb += d
			for _, f := range x.feats {
				grad[f.bucket] += d * f.count
			}
			loss -= x.y*math.Log(p+1e-12) + (1-x.y)*math.Log(1-p+1e-12)
		}
		for i := range w {
			w[i] -= *rate * (grad[i]/n + *l2*w[i])
		}
		bias -= *rate * gb / n
		if e%50 == 0 || e == *epochs-1 {
			fmt.Printf("step %d: loss %.4f\n", e, loss/n)
		}
	}
	buf := make([]byte, 4*(len(w)+1))
	binary.LittleEndian.PutUint32(buf, math.Float32bits(float32(bias)))
	for i, v := range w {
		binary.LittleEndian.PutUint32(buf[4*(i+1):], math.Float32bits(float32(v)))
	}
	if err := os.WriteFile(*out, buf, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d texts (%d attacks), %d weights written to %s\n", len(xs), pos, len(w), *out)
}
