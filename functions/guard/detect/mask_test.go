package detect

import (
	"fmt"
	"strings"
	"testing"
)

func TestMaskStablePlaceholders(t *testing.T) {
	text := "a@acme.io wrote to b@acme.io, then a@acme.io again"
	sc := Default(Options{})
	res := sc.Scan(text)
	masked, m := Mask(text, res.Findings)
	want := "<EMAIL_1> wrote to <EMAIL_2>, then <EMAIL_1> again"
	if masked != want {
		t.Fatalf("masked = %q", masked)
	}
	if got := m.Restore("reply to <EMAIL_2> and <EMAIL_1>, not <EMAIL_3> <x"); got != "reply to b@acme.io and a@acme.io, not <EMAIL_3> <x" {
		t.Fatalf("restored = %q", got)
	}
	for _, s := range []string{m.String(), fmt.Sprintf("%v %+v %#v", m, m, m)} {
		if strings.Contains(s, "acme") {
			t.Fatalf("masker prints a value: %s", s)
		}
	}
	// The same Masker keeps the placeholders across texts.
	if got := m.Mask("cc b@acme.io", sc.Scan("cc b@acme.io").Findings); got != "cc <EMAIL_2>" {
		t.Fatalf("second text = %q", got)
	}
}

func TestMaskOverlapsAndBadSpans(t *testing.T) {
	text := "0123456789"
	fs := []Finding{{Entity: "A", Start: 2, End: 6}, {Entity: "B", Start: 4, End: 8}, {Entity: "C", Start: 8, End: 20}, {Entity: "D", Start: -1, End: 2}}
	if got, _ := Mask(text, fs); got != "01<A_1>6789" {
		t.Fatalf("masked = %q", got)
	}
}

func TestRestorerAcrossChunks(t *testing.T) {
	_, m := Mask("x@acme.io", Default(Options{}).Scan("x@acme.io").Findings)
	r := m.Restorer()
	var out strings.Builder
	for _, c := range []string{"mail <EM", "AIL_", "1> now <", "b> <EMAIL_1"} {
		out.WriteString(r.Write(c))
	}
	out.WriteString(r.Flush())
	if got := out.String(); got != "mail x@acme.io now <b> <EMAIL_1" {
		t.Fatalf("restored = %q", got)
	}
}
