package policy

import (
	"unicode/utf8"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/guard/detect"
)

// Record is a finding as events carry it: what was done (an action other than Off) on which
// side, clipped to the catalog's bounds. It never holds the matched value.
func Record(f detect.Finding, a Action, side string, truncated bool) catalog.Finding {
	reasons := f.Reasons
	if len(reasons) > 32 {
		reasons = reasons[:32]
	}
	var clipped []string
	for _, r := range reasons {
		clipped = append(clipped, clip(r, 512))
	}
	score := f.Score
	if !(score >= 0) {
		score = 0
	}
	return catalog.Finding{
		Detector: clip(f.Detector, 128), Category: clip(string(f.Category), 64), Entity: clip(f.Entity, 128),
		Severity: string(f.Severity), Score: min(score, 1), Start: max(f.Start, 0), End: max(f.End, 0),
		Preview: clip(f.Preview, 512), Fingerprint: clip(f.Fingerprint, 128), Action: string(a), Side: side,
		Reasons: clipped, Truncated: truncated,
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
