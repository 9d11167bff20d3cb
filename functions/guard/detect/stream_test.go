package detect

import (
	"strings"
	"testing"
)

// chunks splits s into pieces of n bytes.
func chunks(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestStreamFindsValueSplitAcrossChunks(t *testing.T) {
	text := strings.Repeat("lorem ipsum dolor ", 20) + "contact jane.doe@acme-corp.io today " + strings.Repeat("sit amet ", 10)
	want := strings.Index(text, "jane")
	for _, n := range []int{1, 3, 7, 64, 1000} {
		st := Default(Options{}).Stream(128)
		var got []Finding
		for _, c := range chunks(text, n) {
			got = append(got, st.Write(c)...)
		}
		got = append(got, st.Close()...)
		if len(got) != 1 || got[0].Start != want || text[got[0].Start:got[0].End] != "jane.doe@acme-corp.io" {
			t.Fatalf("chunk %d: findings %+v", n, got)
		}
	}
}

func TestStreamMasker(t *testing.T) {
	text := strings.Repeat("x", 300) + " mail a@acme.io or b@acme.io, a@acme.io é" + strings.Repeat("y", 50)
	for _, n := range []int{1, 5, 17, 400} {
		sm := NewStreamMasker(Default(Options{}).Stream(0), NewMasker(), 32, nil)
		var out strings.Builder
		var found int
		for _, c := range chunks(text, n) {
			s, fs := sm.Write(c)
			out.WriteString(s)
			found += len(fs)
		}
		s, fs := sm.Close()
		out.WriteString(s)
		found += len(fs)
		want := strings.Repeat("x", 300) + " mail <EMAIL_1> or <EMAIL_2>, <EMAIL_1> é" + strings.Repeat("y", 50)
		if out.String() != want || found != 3 {
			t.Fatalf("chunk %d: %d findings, out %q", n, found, out.String())
		}
	}
}

// TestStreamWorkBounded: a stream of one-byte chunks does at most (LookBack+MinScan)/MinScan
// (+1) times the work of one scan of the whole text, so a token-by-token stream stays cheap.
func TestStreamWorkBounded(t *testing.T) {
	text := benchPrompt(8 << 10)
	sc := Default(Options{})
	countingWork = true
	defer func() { countingWork = false }()
	workDone.Store(0)
	sc.Scan(text)
	whole := workDone.Load()
	workDone.Store(0)
	st := sc.Stream(0)
	for i := 0; i < len(text); i++ {
		st.Write(text[i : i+1])
	}
	st.Close()
	streamed := workDone.Load()
	bound := int64(float64(whole) * (float64(DefaultLookBack+DefaultMinScan)/DefaultMinScan + 1))
	if streamed > bound {
		t.Fatalf("streamed work %d, one scan %d, bound %d", streamed, whole, bound)
	}
}
