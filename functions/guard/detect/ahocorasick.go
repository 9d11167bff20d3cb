package detect

// keywords is an Aho-Corasick automaton over ASCII-lowered bytes: one pass over a text says
// which of a set of keywords occur in it, in time linear in the text. The secret and injection
// detectors use it to run only the rules whose keywords a text holds, as gitleaks does.
type keywords struct {
	next  [][256]int32 // goto function, completed with the failure links
	out   [][]int      // keyword indexes ending at each state
	words []string
}

func newKeywords(words []string) *keywords {
	k := &keywords{words: words, next: make([][256]int32, 1), out: make([][]int, 1)}
	for i := range k.next[0] {
		k.next[0][i] = -1
	}
	for wi, w := range words {
		s := int32(0)
		for i := 0; i < len(w); i++ {
			c := lowerByte(w[i])
			if k.next[s][c] < 0 {
				var row [256]int32
				for j := range row {
					row[j] = -1
				}
				k.next = append(k.next, row)
				k.out = append(k.out, nil)
				k.next[s][c] = int32(len(k.next) - 1)
			}
			s = k.next[s][c]
		}
		k.out[s] = append(k.out[s], wi)
	}
	// Breadth first: failure links, folded into the goto table.
	fail := make([]int32, len(k.next))
	queue := []int32{}
	for c := 0; c < 256; c++ {
		if t := k.next[0][c]; t >= 0 {
			fail[t] = 0
			queue = append(queue, t)
		} else {
			k.next[0][c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for c := 0; c < 256; c++ {
			t := k.next[s][c]
			if t < 0 {
				k.next[s][c] = k.next[fail[s]][c]
				continue
			}
			fail[t] = k.next[fail[s]][c]
			k.out[t] = append(k.out[t], k.out[fail[t]]...)
			queue = append(queue, t)
		}
	}
	return k
}

func lowerByte(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// find marks in hit (len(words)) the keywords text contains, and returns how many.
func (k *keywords) find(text string, hit []bool) int {
	n := 0
	s := int32(0)
	for i := 0; i < len(text); i++ {
		s = k.next[s][lowerByte(text[i])]
		for _, w := range k.out[s] {
			if !hit[w] {
				hit[w] = true
				n++
			}
		}
	}
	return n
}

// positions calls f with each keyword index and the offset just past each occurrence.
func (k *keywords) positions(text string, f func(word, end int)) {
	s := int32(0)
	for i := 0; i < len(text); i++ {
		s = k.next[s][lowerByte(text[i])]
		for _, w := range k.out[s] {
			f(w, i+1)
		}
	}
}
