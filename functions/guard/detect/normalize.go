package detect

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// normalized is a text rewritten for matching phrases: lower case, accents folded (é -> e,
// ß -> ss), look-alike letters from other scripts folded to Latin (Cyrillic а -> a), full-width
// forms to ASCII, invisible characters dropped, Unicode tag characters decoded to the ASCII
// they hide, runs of spaces and tabs collapsed. Every byte of it maps back to a span of the
// original text.
type normalized struct {
	text       string
	orig       string
	start      []int32 // offset in orig of the character each byte of text comes from
	leet       string  // text with leetspeak digits and symbols folded inside words, same length
	invisible  int     // zero-width, bidi and other format characters dropped
	tags       int     // tag characters decoded
	homoglyphs int     // letters folded from another script inside Latin words
	fullwidth  int
}

// homoglyphs maps letters of other scripts that look like Latin ones.
var homoglyphs = map[rune]byte{
	'а': 'a', 'в': 'b', 'е': 'e', 'ё': 'e', 'к': 'k', 'м': 'm', 'н': 'h', 'о': 'o', 'р': 'p', 'с': 'c', 'т': 't', 'у': 'y', 'х': 'x',
	'і': 'i', 'ї': 'i', 'ј': 'j', 'ѕ': 's', 'һ': 'h', 'ԁ': 'd', 'ԛ': 'q', 'ԝ': 'w', 'ɡ': 'g',
	'α': 'a', 'β': 'b', 'ε': 'e', 'η': 'n', 'ι': 'i', 'κ': 'k', 'ν': 'v', 'ο': 'o', 'ρ': 'p', 'τ': 't', 'υ': 'u', 'χ': 'x', 'ω': 'w',
	'ℓ': 'l', 'ı': 'i',
}

// accents folds the Latin letters with diacritics of the languages matched.
var accents = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'ç': "c", 'è': "e", 'é': "e", 'ê': "e", 'ë': "e",
	'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ñ': "n", 'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o",
	'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ý': "y", 'ÿ': "y", 'ß': "ss", 'œ': "oe", 'æ': "ae",
	'’': "'", '‘': "'", '“': "\"", '”': "\"", '«': "\"", '»': "\"", '„': "\"", '–': "-", '—': "-", '\u00a0': " ", '¿': " ", '¡': " ",
}

func isInvisible(r rune) bool {
	switch {
	case r >= 0x200B && r <= 0x200F, r >= 0x202A && r <= 0x202E, r >= 0x2060 && r <= 0x2064, r >= 0x2066 && r <= 0x2069,
		r == 0xFEFF, r == 0x00AD, r == 0x180E, r == 0x034F, r >= 0xFE00 && r <= 0xFE0F:
		return true
	}
	return false
}

func normalize(text string) *normalized {
	n := &normalized{}
	buf := make([]byte, 0, len(text))
	n.start = make([]int32, 0, len(text))
	n.orig = text
	put := func(b byte, s, _ int) {
		buf = append(buf, b)
		n.start = append(n.start, int32(s))
	}
	prevLatin := false
	afterFlag := false
	inTag := false
	space := func(i int) {
		if len(buf) > 0 && buf[len(buf)-1] != ' ' && buf[len(buf)-1] != '\n' {
			put(' ', i, i)
		}
	}
	for i := 0; i < len(text); {
		c := text[i]
		if inTag && !(c == 0xF3 && i+1 < len(text) && text[i+1] == 0xA0) {
			inTag = false
			space(i) // hidden text is a text of its own
		}
		if c < utf8.RuneSelf {
			switch {
			case c == ' ' || c == '\t' || c == '\r':
				if len(buf) == 0 || buf[len(buf)-1] != ' ' && buf[len(buf)-1] != '\n' {
					put(' ', i, i+1)
				}
			case c == '\n':
				if len(buf) > 0 && buf[len(buf)-1] == ' ' {
					buf[len(buf)-1] = '\n'
				} else {
					put('\n', i, i+1)
				}
			default:
				buf = append(buf, lowerByte(c))
				n.start = append(n.start, int32(i))
			}
			prevLatin = isLetter(c)
			afterFlag = false
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(text[i:])
		e := i + size
		switch {
		case r == 0x1F3F4: // a waving black flag: tag characters after it spell a region's flag
			afterFlag = true
			put('?', i, e)
		case r >= 0xE0000 && r <= 0xE007F:
			if !afterFlag && r >= 0xE0020 && r <= 0xE007E {
				if !inTag {
					space(i)
					inTag = true
				}
				n.tags++
				put(lowerByte(byte(r-0xE0000)), i, e)
			}
		case isInvisible(r):
			n.invisible++
		case r >= 0xFF01 && r <= 0xFF5E:
			n.fullwidth++
			put(lowerByte(byte(r-0xFEE0)), i, e)
		default:
			afterFlag = false
			lr := unicode.ToLower(r)
			if a, ok := accents[lr]; ok {
				for k := 0; k < len(a); k++ {
					put(a[k], i, e)
				}
				prevLatin = true
				break
			}
			if h, ok := homoglyphs[lr]; ok {
				nextLatin := e < len(text) && isLetter(text[e])
				if prevLatin || nextLatin {
					n.homoglyphs++
				}
				put(h, i, e)
				prevLatin = true
				break
			}
			var tmp [4]byte
			k := utf8.EncodeRune(tmp[:], lr)
			for j := 0; j < k; j++ {
				put(tmp[j], i, e)
			}
			prevLatin = false
		}
		i = e
	}
	n.text = string(buf)
	n.leet = leetFold(buf)
	return n
}

// leetFold folds leetspeak (1gn0r3 -> ignore) in words where a leet digit or symbol stands
// between two letters or starts a word before two letters, or that mix at least two of them
// with two letters; identifiers such as v1, utf8, x86 and sha256, and hexadecimal words, are
// kept.
func leetFold(b []byte) string {
	out := make([]byte, len(b))
	copy(out, b)
	for i := 0; i < len(out); {
		if !isLeetWordByte(out[i]) {
			i++
			continue
		}
		j := i
		leet, letters, leets, hexOnly := false, 0, 0, true
		for j < len(out) && isLeetWordByte(out[j]) {
			c := out[j]
			if isLetter(c) {
				letters++
			} else if isLeetChar(c) {
				leets++
				between := j > i && isLetter(out[j-1]) && j+1 < len(out) && isLetter(out[j+1])
				first := j == i && j+2 < len(out) && isLetter(out[j+1]) && isLetter(out[j+2])
				if between || first {
					leet = true
				}
			}
			if !isHex(c) {
				hexOnly = false
			}
			j++
		}
		leet = (leet || leets >= 2 && letters >= 2) && !hexOnly
		if leet {
			for k := i; k < j; k++ {
				switch out[k] {
				case '0':
					out[k] = 'o'
				case '1', '!', '|':
					out[k] = 'i'
				case '3':
					out[k] = 'e'
				case '4', '@':
					out[k] = 'a'
				case '5', '$':
					out[k] = 's'
				case '7', '+':
					out[k] = 't'
				case '8':
					out[k] = 'b'
				case '9':
					out[k] = 'g'
				}
			}
		}
		i = j
	}
	return string(out)
}

func isLeetChar(c byte) bool { return strings.IndexByte("0134578 9@$!|+", c) >= 0 && c != ' ' }

func isLeetWordByte(c byte) bool {
	return isLetter(c) || isDigit(c) || c == '@' || c == '$' || c == '!' || c == '|' || c == '+'
}

// span maps a span of the normalized text back to the original.
func (n *normalized) span(s, e int) (int, int) {
	if len(n.start) == 0 {
		return 0, 0
	}
	if s >= len(n.start) {
		s = len(n.start) - 1
	}
	if e <= s {
		e = s + 1
	}
	if e > len(n.start) {
		e = len(n.start)
	}
	last := int(n.start[e-1])
	end := last + 1
	if last < len(n.orig) && n.orig[last] >= utf8.RuneSelf {
		_, size := utf8.DecodeRuneInString(n.orig[last:])
		end = last + size
	}
	return int(n.start[s]), min(end, len(n.orig))
}
