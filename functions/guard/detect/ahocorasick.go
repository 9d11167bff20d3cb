package detect

// keywords is an Aho-Corasick automaton over ASCII-lowered bytes: one pass over a text says
// which of a set of keywords occur in it, in time linear in the text. The secret and injection
// detectors use it to run only the rules whose keywords a text holds, as gitleaks does.
//
// Bytes are mapped to classes first (each byte the keywords use has its own, every other
// byte shares one), so the transition table has a row of a few dozen entries per state and
// stays in cache.
type keywords struct {
	class   [256]uint8
	classes int
	next    []int32 // next[state*classes+class], completed with the failure links
	out     [][]int // keyword indexes ending at each state
	words   []string
}

func newKeywords(words []string) *keywords {
	k := &keywords{words: words}
	k.classes = 1 // class 0: bytes no keyword uses
	for _, w := range words {
		for i := 0; i < len(w); i++ {
			c := lowerByte(w[i])
			if k.class[c] == 0 {
				k.class[c] = uint8(k.classes)
				k.classes++
			}
		}
	}
	for c := 'A'; c <= 'Z'; c++ {
		k.class[c] = k.class[c+'a'-'A']
	}
	newState := func() int32 {
		for i := 0; i < k.classes; i++ {
			k.next = append(k.next, -1)
		}
		k.out = append(k.out, nil)
		return int32(len(k.out) - 1)
	}
	newState()
	for wi, w := range words {
		s := int32(0)
		for i := 0; i < len(w); i++ {
			c := int32(k.class[lowerByte(w[i])])
			if k.next[s*int32(k.classes)+c] < 0 {
				t := newState()
				k.next[s*int32(k.classes)+c] = t
			}
			s = k.next[s*int32(k.classes)+c]
		}
		k.out[s] = append(k.out[s], wi)
	}
	// Breadth first: failure links, folded into the goto table.
	n := int32(k.classes)
	fail := make([]int32, len(k.out))
	var queue []int32
	for c := int32(0); c < n; c++ {
		if t := k.next[c]; t > 0 {
			queue = append(queue, t)
		} else {
			k.next[c] = 0
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		for c := int32(0); c < n; c++ {
			t := k.next[s*n+c]
			if t < 0 {
				k.next[s*n+c] = k.next[fail[s]*n+c]
				continue
			}
			fail[t] = k.next[fail[s]*n+c]
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
	k.positions(text, func(w, _ int) {
		if !hit[w] {
			hit[w] = true
			n++
		}
	})
	return n
}

// positions calls f with each keyword index and the offset just past each occurrence.
func (k *keywords) positions(text string, f func(word, end int)) {
	s := int32(0)
	n := int32(k.classes)
	for i := 0; i < len(text); i++ {
		s = k.next[s*n+int32(k.class[text[i]])]
		for _, w := range k.out[s] {
			f(w, i+1)
		}
	}
}
