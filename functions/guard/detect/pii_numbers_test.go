package detect

import (
	"strings"
	"testing"
)

// found scans text with d and returns the matched strings of findings from detector (all when
// detector is "") scoring at least DefaultThreshold.
func found(d Detector, text, detector string) []string {
	var out []string
	d.Detect(text, func(f Finding) {
		if f.Start < 0 || f.End > len(text) || f.Start > f.End {
			panic("span outside the text")
		}
		if (detector == "" || f.Detector == detector) && f.Score >= DefaultThreshold {
			out = append(out, text[f.Start:f.End])
		}
	})
	return out
}

type tcase struct {
	text string
	want []string
}

func runCases(t *testing.T, d Detector, detector string, cases []tcase) {
	t.Helper()
	for _, c := range cases {
		got := found(d, c.text, detector)
		if strings.Join(got, "|") != strings.Join(c.want, "|") {
			t.Errorf("%s in %q: got %q, want %q", detector, c.text, got, c.want)
		}
	}
}

func TestCards(t *testing.T) {
	runCases(t, Numbers{}, "pii.credit_card", []tcase{
		{"my card is 4111 1111 1111 1111, exp 12/27", []string{"4111 1111 1111 1111"}},
		{"pay with 5500-0000-0000-0004 please", []string{"5500-0000-0000-0004"}},
		{"amex 3782 822463 10005", []string{"3782 822463 10005"}},
		{"4012888888881881", []string{"4012888888881881"}},
		{"visa: 4111 1111 1111 1112", nil},             // Luhn fails
		{"Order number 1234567812345678 shipped", nil}, // no issuer, Luhn fails
		{"id 9111111111111111", nil},                   // no issuer
		{"0000 0000 0000 0000", nil},
		{"tracking 4111111111111111x", nil}, // glued to a letter
		{"pi is 3.14159265358979323", nil},
	})
}

func TestSSN(t *testing.T) {
	runCases(t, Numbers{}, "pii.us_ssn", []tcase{
		{"SSN: 536-22-1234", []string{"536-22-1234"}},
		{"her social security number is 536221234", []string{"536221234"}},
		{"536-22-1234", []string{"536-22-1234"}},
		{"SSN 000-12-3456", nil},
		{"SSN 666-12-3456", nil},
		{"SSN 912-12-3456", nil},
		{"SSN 536-00-1234", nil},
		{"SSN 536-22-0000", nil},
		{"order 536221234", nil},
	})
}

func TestPhones(t *testing.T) {
	runCases(t, Numbers{}, "pii.phone", []tcase{
		{"call +1 415 555 2671", []string{"+1 415 555 2671"}},
		{"+44 20 7946 0958", []string{"+44 20 7946 0958"}},
		{"+49 30 12345678", []string{"+49 30 12345678"}},
		{"+33 6 12 34 56 78", []string{"+33 6 12 34 56 78"}},
		{"+34 612 345 678", []string{"+34 612 345 678"}},
		{"(415) 555-2671", []string{"(415) 555-2671"}},
		{"415-555-2671", []string{"415-555-2671"}},
		{"tel 07700 900123", []string{"07700 900123"}},
		{"appelle-moi au 06 12 34 56 78", []string{"06 12 34 56 78"}},
		{"llámame al 612 345 678", []string{"612 345 678"}},
		{"Telefon 030 12345678", []string{"030 12345678"}},
		{"phone: 4155552671", []string{"4155552671"}},
		{"+1 115 555 2671", nil},                 // area code starts with 1
		{"+99 1234", nil},                        // too short
		{"4155552671", nil},                      // bare digits without context
		{"2024-01-15", nil},                      // a date
		{"order 415-555-2671", nil},              // negative context drops below the threshold
		{"call (415) 555-0123 in the film", nil}, // reserved for fiction
	})
}

func TestIPv4AndDates(t *testing.T) {
	runCases(t, Numbers{}, "pii.ip_address", []tcase{
		{"client 81.2.69.160 connected", []string{"81.2.69.160"}},
		{"bind 127.0.0.1", nil},
		{"nameserver 8.8.8.8", nil},
		{"version 1.2.3.4", nil},
		{"256.1.1.1", nil},
		{"1.2.3.4.5", nil},
	})
	runCases(t, Numbers{}, "pii.date_of_birth", []tcase{
		{"born 1984-03-12 in Leeds", []string{"1984-03-12"}},
		{"fecha de nacimiento: 12/03/1984", []string{"12/03/1984"}},
		{"geboren am 12.03.1984", []string{"12.03.1984"}},
		{"released 1984-03-12", nil},
		{"born 1946-04-21\nOn 2024-03-03 the queue", []string{"1946-04-21"}},
		{"born 1984-13-45", nil},
	})
}
