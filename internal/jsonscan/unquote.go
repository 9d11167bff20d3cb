package jsonscan

import (
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// AppendUnquote appends to dst the string that content (as returned by String or Member)
// stands for, decoded as encoding/json decodes it: escapes resolved, a lone UTF-16 surrogate
// and each byte of invalid UTF-8 replaced by U+FFFD. content must have passed the Scanner.
func AppendUnquote(dst, content []byte) []byte {
	for i := 0; i < len(content); {
		c := content[i]
		switch {
		case c == '\\':
			var r rune
			r, i = unescape(content, i)
			dst = utf8.AppendRune(dst, r)
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(content[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}

// unescape decodes the escape at content[i] and returns the rune and the index after it.
func unescape(content []byte, i int) (rune, int) {
	switch content[i+1] {
	case 'b':
		return '\b', i + 2
	case 'f':
		return '\f', i + 2
	case 'n':
		return '\n', i + 2
	case 'r':
		return '\r', i + 2
	case 't':
		return '\t', i + 2
	case 'u':
		r := hex4(content[i+2:])
		i += 6
		if !utf16.IsSurrogate(r) {
			return r, i
		}
		if i+6 <= len(content) && content[i] == '\\' && content[i+1] == 'u' {
			if pair := utf16.DecodeRune(r, hex4(content[i+2:])); pair != unicode.ReplacementChar {
				return pair, i + 6
			}
		}
		return unicode.ReplacementChar, i
	default: // '"', '\\', '/'
		return rune(content[i+1]), i + 2
	}
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// Unquoted returns the string that content stands for, given plain as String or Member returned
// them: content itself when plain, else decoded by AppendUnquote.
func Unquoted(content []byte, plain bool) string {
	if plain {
		return string(content)
	}
	return string(AppendUnquote(nil, content))
}
