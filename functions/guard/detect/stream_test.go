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
