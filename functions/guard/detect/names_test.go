package detect

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsDetectors: every detector name appears in the README's table.
func TestREADMEListsDetectors(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range DetectorNames() {
		_, short, _ := strings.Cut(n, ".")
		if !strings.Contains(string(b), "`"+short+"`") {
			t.Errorf("README does not list %s", n)
		}
	}
}
