package detect

import "testing"

func TestDefaultFindsEmail(t *testing.T) {
	text := "write to jane.doe@acme-corp.io."
	res := Default(Options{HashKey: []byte("k")}).Scan(text)
	if len(res.Findings) != 1 {
		t.Fatalf("findings = %+v", res.Findings)
	}
	f := res.Findings[0]
	if got := text[f.Start:f.End]; got != "jane.doe@acme-corp.io" {
		t.Fatalf("span = %q", got)
	}
	if f.Preview != "j*******@a********.io" || f.Fingerprint == "" || f.Score < DefaultThreshold {
		t.Fatalf("finding = %+v", f)
	}
}
