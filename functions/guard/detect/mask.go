package detect

import (
	"sort"
	"strconv"
	"strings"
)

// Masker replaces findings with placeholders that are stable per value: within one Masker the
// same value always gets the same placeholder (<EMAIL_1>, <EMAIL_2>, <CREDIT_CARD_1>), so a
// request's messages masked with one Masker stay consistent, and Restore puts the values back
// in an answer.
//
// A Masker holds the masked values in memory, because restoring needs them: keep it for one
// request, never log or store it. Its String method prints only the counts.
type Masker struct {
	counts        map[string]int    // entity -> placeholders handed out
	byValue       map[string]string // entity + "\x00" + value -> placeholder
	byPlaceholder map[string]string // placeholder -> value
}

// NewMasker returns an empty Masker.
func NewMasker() *Masker {
	return &Masker{counts: map[string]int{}, byValue: map[string]string{}, byPlaceholder: map[string]string{}}
}

// Mask returns text with each finding's span replaced by its placeholder, and the Masker that
// restores them. findings must come from scanning text (spans relative to it); pass only those
// to mask (a policy's mask categories).
func Mask(text string, findings []Finding) (string, *Masker) {
	m := NewMasker()
	return m.Mask(text, findings), m
}

// Mask replaces findings' spans in text with placeholders. Overlapping findings are merged
// into the first (leftmost, then longest) one.
func (m *Masker) Mask(text string, findings []Finding) string {
	fs := make([]Finding, 0, len(findings))
	for _, f := range findings {
		if f.Start >= 0 && f.End <= len(text) && f.Start < f.End {
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		return text
	}
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Start != fs[j].Start {
			return fs[i].Start < fs[j].Start
		}
		return fs[i].End > fs[j].End
	})
	var b strings.Builder
	b.Grow(len(text))
	pos := 0
	for _, f := range fs {
		if f.Start < pos {
			continue // overlaps a span already masked
		}
		b.WriteString(text[pos:f.Start])
		b.WriteString(m.placeholder(f.Entity, text[f.Start:f.End]))
		pos = f.End
	}
	b.WriteString(text[pos:])
	return b.String()
}

func (m *Masker) placeholder(entity, value string) string {
	if entity == "" {
		entity = "REDACTED"
	}
	key := entity + "\x00" + value
	if p, ok := m.byValue[key]; ok {
		return p
	}
	m.counts[entity]++
	p := "<" + entity + "_" + strconv.Itoa(m.counts[entity]) + ">"
	m.byValue[key] = p
	m.byPlaceholder[p] = value
	return p
}

// Len is the number of distinct values masked.
func (m *Masker) Len() int { return len(m.byPlaceholder) }

// String names the entities masked and their counts, never a value.
func (m *Masker) String() string {
	keys := make([]string, 0, len(m.counts))
	for k := range m.counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("Masker{")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + ":" + strconv.Itoa(m.counts[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// GoString is String, so %#v prints no value either.
func (m *Masker) GoString() string { return m.String() }

// Restore replaces every placeholder this Masker handed out with its value. Text that is not
// one of its placeholders is left as it is.
func (m *Masker) Restore(text string) string {
	if len(m.byPlaceholder) == 0 || !strings.Contains(text, "<") {
		return text
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(text, '<')
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		j := strings.IndexByte(text[i:], '>')
		if j < 0 {
			b.WriteString(text)
			return b.String()
		}
		if v, ok := m.byPlaceholder[text[i:i+j+1]]; ok {
			b.WriteString(text[:i])
			b.WriteString(v)
			text = text[i+j+1:]
			continue
		}
		b.WriteString(text[:i+1])
		text = text[i+1:]
	}
}

// maxPlaceholder bounds a placeholder's length, for restoring streams.
const maxPlaceholder = 48

// Restorer restores placeholders in a stream of chunks, holding back a chunk's tail that may
// be the start of a placeholder the next chunk completes.
type Restorer struct {
	m       *Masker
	pending string
}

// Restorer returns a stream restorer for m's placeholders.
func (m *Masker) Restorer() *Restorer { return &Restorer{m: m} }

// Write returns the restored text that is final after chunk.
func (r *Restorer) Write(chunk string) string {
	s := r.pending + chunk
	r.pending = ""
	if i := strings.LastIndexByte(s, '<'); i >= 0 && !strings.Contains(s[i:], ">") && len(s)-i < maxPlaceholder {
		s, r.pending = s[:i], s[i:]
	}
	return r.m.Restore(s)
}

// Flush returns what Write held back.
func (r *Restorer) Flush() string {
	s := r.pending
	r.pending = ""
	return r.m.Restore(s)
}
