// Command eval scores the detectors on the labelled evaluation set in
// functions/guard/detect/testdata/eval and prints, per split (dev: used for tuning; heldout:
// not), per category: precision, recall, F1, support, and the false-positive rate on benign and
// on hard-negative texts.
//
// PII and secrets are scored by value: a finding at or above the threshold is a true positive
// when it overlaps a labelled value of its category, a labelled value is found when a finding
// of its category overlaps it. Injection and jailbreak are scored by text: a text is flagged
// for a category when it has a finding of it at or above the threshold; "attack" counts a text
// as flagged when it has either, against texts that are either.
//
//	go run ./functions/guard/detect/cmd/eval [-dir ...] [-threshold 0.5] [-split dev|heldout] [-v]
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/guard/detect/internal/evalset"
)

func main() {
	dir := flag.String("dir", "functions/guard/detect/testdata/eval", "evaluation set directory")
	threshold := flag.Float64("threshold", detect.DefaultThreshold, "score from which a finding counts")
	only := flag.String("split", "", "score only this split")
	verbose := flag.Bool("v", false, "list every miss and false positive (ids and detectors, no values)")
	flag.Parse()
	sc := detect.Default(detect.Options{})
	for _, split := range []string{"dev", "heldout"} {
		if *only != "" && split != *only {
			continue
		}
		files, _ := filepath.Glob(filepath.Join(*dir, split, "*.jsonl"))
		sort.Strings(files)
		var rs []evalset.Record
		for _, f := range files {
			r, err := evalset.Read(f)
			if err != nil {
				log.Fatal(err)
			}
			rs = append(rs, r...)
		}
		report(os.Stdout, split, rs, sc, *threshold, *verbose)
	}
}

type counts struct {
	tp, fp, fn, support  int
	benign, benignFP     int
	hard, hardFP         int
	longSupport, longHit int
}

func (c *counts) row(name string) string {
	p := ratio(c.tp, c.tp+c.fp)
	r := ratio(c.tp, c.tp+c.fn)
	f1 := 0.0
	if p+r > 0 {
		f1 = 2 * p * r / (p + r)
	}
	return fmt.Sprintf("%s\t%.3f\t%.3f\t%.3f\t%d\t%.3f (%d/%d)\t%.3f (%d/%d)\t%d/%d", name, p, r, f1, c.support,
		ratio(c.benignFP, c.benign), c.benignFP, c.benign, ratio(c.hardFP, c.hard), c.hardFP, c.hard, c.longHit, c.longSupport)
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func report(w *os.File, split string, rs []evalset.Record, sc *detect.Scanner, thr float64, verbose bool) {
	cats := []string{"pii", "secret", "injection", "jailbreak", "attack"}
	c := map[string]*counts{}
	for _, k := range cats {
		c[k] = &counts{}
	}
	entity := map[string][2]int{} // found, support
	lang := map[string][2]int{}   // attacks flagged, attacks
	byKind := map[string][2]int{} // values and attacks found, by prompt or response

	var misses []string
	for _, r := range rs {
		res := sc.Scan(r.Text)
		var fs []detect.Finding
		for _, f := range res.Findings {
			if f.Score >= thr {
				fs = append(fs, f)
			}
		}
		// Values: PII and secrets.
		for _, cat := range []string{"pii", "secret"} {
			if !r.InScope(cat) {
				continue
			}
			k := c[cat]
			falsePos := 0
			for _, f := range fs {
				if string(f.Category) != cat {
					continue
				}
				if overlapsLabel(f, r.Labels, cat) {
					k.tp++
				} else {
					k.fp++
					falsePos++
					if verbose {
						misses = append(misses, fmt.Sprintf("FP %s %s %s %q", split, r.ID, f.Detector, f.Preview))
					}
				}
			}
			for _, l := range r.Labels {
				if l.Category != cat {
					continue
				}
				k.support++
				e := entity[l.Entity]
				e[1]++
				found := labelFound(l, fs)
				bk := byKind[r.Kind]
				bk[1]++
				if found {
					bk[0]++
				}
				byKind[r.Kind] = bk
				if found {
					e[0]++
				} else {
					k.fn++
					if verbose {
						misses = append(misses, fmt.Sprintf("FN %s %s %s", split, r.ID, l.Entity))
					}
				}
				if r.Long {
					k.longSupport++
					if found {
						k.longHit++
					}
				}
				entity[l.Entity] = e
			}
			tally(k, r, falsePos > 0)
		}
		// Texts: injection and jailbreak.
		flagged := map[string]bool{}
		for _, f := range fs {
			flagged[string(f.Category)] = true
		}
		flagged["attack"] = flagged["injection"] || flagged["jailbreak"]
		for _, cat := range []string{"injection", "jailbreak", "attack"} {
			if cat != "attack" && !r.InScope(cat) || cat == "attack" && !r.InScope("injection") {
				continue
			}
			k := c[cat]
			gold := r.Attack == cat || cat == "attack" && r.Attack != ""
			switch {
			case gold && flagged[cat]:
				k.tp++
			case gold:
				k.fn++
				if verbose && cat == "attack" {
					misses = append(misses, fmt.Sprintf("FN %s %s %s %.60q", split, r.ID, r.Attack, r.Text))
				}
			case flagged[cat]:
				k.fp++
				if verbose && cat == "attack" {
					misses = append(misses, fmt.Sprintf("FP %s %s %s %.60q", split, r.ID, r.Group, r.Text))
				}
			}
			if gold {
				k.support++
				if r.Long {
					k.longSupport++
					if flagged[cat] {
						k.longHit++
					}
				}
			}
			if cat == "attack" && gold {
				bk := byKind[r.Kind]
				bk[1]++
				if flagged[cat] {
					bk[0]++
				}
				byKind[r.Kind] = bk
				l := lang[r.Lang]
				l[1]++
				if flagged[cat] {
					l[0]++
				}
				lang[r.Lang] = l
			}
			tally(k, r, !gold && flagged[cat])
		}
	}
	fmt.Fprintf(w, "\n== %s split (%d texts, threshold %.2f)\n", split, len(rs), thr)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "category\tprecision\trecall\tF1\tsupport\tFP rate benign\tFP rate hard-negative\tlong texts found")
	for _, k := range cats {
		fmt.Fprintln(tw, c[k].row(k))
	}
	tw.Flush()
	var ents []string
	for e := range entity {
		ents = append(ents, e)
	}
	sort.Strings(ents)
	var b strings.Builder
	for _, e := range ents {
		fmt.Fprintf(&b, " %s %d/%d", e, entity[e][0], entity[e][1])
	}
	fmt.Fprintf(w, "values found per entity:%s\n", b.String())
	b.Reset()
	var ls []string
	for l := range lang {
		ls = append(ls, l)
	}
	sort.Strings(ls)
	for _, l := range ls {
		fmt.Fprintf(&b, " %s %d/%d", l, lang[l][0], lang[l][1])
	}
	fmt.Fprintf(w, "attacks flagged per language:%s\n", b.String())
	fmt.Fprintf(w, "values and attacks found: in prompts %d/%d, in responses %d/%d\n",
		byKind["prompt"][0], byKind["prompt"][1], byKind["response"][0], byKind["response"][1])
	for _, m := range misses {
		fmt.Fprintln(w, "  "+m)
	}
}

// tally counts r among the benign or hard-negative texts, and whether it had a false positive.
func tally(k *counts, r evalset.Record, fp bool) {
	switch r.Group {
	case evalset.Benign:
		k.benign++
		if fp {
			k.benignFP++
		}
	case evalset.HardNegative:
		k.hard++
		if fp {
			k.hardFP++
		}
	}
}

func overlapsLabel(f detect.Finding, ls []evalset.Label, cat string) bool {
	for _, l := range ls {
		if l.Category == cat && f.Start < l.End && l.Start < f.End {
			return true
		}
	}
	return false
}

func labelFound(l evalset.Label, fs []detect.Finding) bool {
	for _, f := range fs {
		if string(f.Category) == l.Category && f.Start < l.End && l.Start < f.End {
			return true
		}
	}
	return false
}
