// Package evalset is the labelled evaluation set's record format, shared by the command that
// generates its synthetic part (cmd/evalgen) and the one that scores the detectors on it
// (cmd/eval).
package evalset

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Groups of records.
const (
	Positive     = "positive"      // holds labelled values or is an attack
	Benign       = "benign"        // ordinary text with nothing to find
	HardNegative = "hard_negative" // text built to look like a finding and not be one
)

// Record is one text of the set.
type Record struct {
	ID     string `json:"id"`
	Source string `json:"source"`
	Lang   string `json:"lang,omitempty"`
	Kind   string `json:"kind"` // prompt or response
	Group  string `json:"group"`
	// Attack is "injection" or "jailbreak" for an attack text.
	Attack string  `json:"attack,omitempty"`
	Long   bool    `json:"long,omitempty"` // a value buried in about 2 KB of prose or code
	Text   string  `json:"text"`
	Labels []Label `json:"labels,omitempty"`
	// Scope lists the categories the record is labelled for; empty means all. The attack
	// files (injection*.jsonl, bastioncorpus-*) are labelled for injection and jailbreak only:
	// an attacker's address in them is not a labelled e-mail.
	Scope []string `json:"scope,omitempty"`
}

// InScope reports whether r is labelled for category.
func (r *Record) InScope(category string) bool {
	if len(r.Scope) == 0 {
		return true
	}
	for _, c := range r.Scope {
		if c == category {
			return true
		}
	}
	return false
}

// Label is one value to find, by byte span.
type Label struct {
	Category string `json:"category"`
	Entity   string `json:"entity"`
	Start    int    `json:"start"`
	End      int    `json:"end"`
}

// Read reads a JSON-lines file of records. Files named bastioncorpus-* are in that corpus's
// own format and are converted.
func Read(path string) ([]Record, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	bastion := strings.Contains(path, "bastioncorpus-")
	var out []Record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for line := 1; sc.Scan(); line++ {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var r Record
		if bastion {
			r, err = fromBastion(sc.Bytes())
		} else {
			err = json.Unmarshal(sc.Bytes(), &r)
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		for _, l := range r.Labels {
			if l.Start < 0 || l.End > len(r.Text) || l.Start >= l.End {
				return nil, fmt.Errorf("%s:%d: label %+v outside the text", path, line, l)
			}
		}
		base := filepath.Base(path)
		if len(r.Scope) == 0 && (bastion || strings.HasPrefix(base, "injection")) {
			r.Scope = []string{"injection", "jailbreak"}
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// fromBastion converts a bastioncorpus row: malicious rows are attacks (jailbreak for its
// jailbreak_persona category), benign rows built around attack words (benign_ignore,
// benign_forget, ...) are hard negatives, the plain support, code and creative ones benign.
func fromBastion(b []byte) (Record, error) {
	var row struct {
		ID, Category, Label, Channel, Lang, Text string
	}
	if err := json.Unmarshal(b, &row); err != nil {
		return Record{}, err
	}
	r := Record{ID: "bastion-" + row.ID, Source: "bastioncorpus 0.6.0 (MIT)", Lang: row.Lang, Kind: "prompt", Text: row.Text}
	if row.Channel == "tool_output" {
		r.Kind = "response"
	}
	switch {
	case row.Label == "malicious":
		r.Group, r.Attack = Positive, "injection"
		if row.Category == "jailbreak_persona" {
			r.Attack = "jailbreak"
		}
	case row.Category == "benign_support" || row.Category == "benign_codegen" || row.Category == "benign_creative":
		r.Group = Benign
	default:
		r.Group = HardNegative
	}
	return r, nil
}

// Write writes records as JSON lines.
func Write(path string, rs []Record) error {
	var b strings.Builder
	for _, r := range rs {
		j, err := json.Marshal(r)
		if err != nil {
			return err
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
