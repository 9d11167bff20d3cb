// Package jsonscan reads JSON text in place, without allocating: a cursor over a []byte that
// steps through objects, arrays, strings, numbers and literals, checking the grammar as it goes
// exactly as strictly as encoding/json does (the fuzz test holds the two together).
//
// It is for hot paths that only need to look at a document (validate it, find a field, split
// a batch array into its raw elements) and never need a decoded Go value:
//
//	s := jsonscan.New(data)
//	if !s.BeginObject() {
//		return s.Err()
//	}
//	for {
//		key, _, ok := s.Member()
//		if !ok {
//			break
//		}
//		raw := s.Skip() // or String, Number, BeginObject, ... to read the value
//		_, _ = key, raw
//	}
//	if !s.End() {
//		return s.Err()
//	}
//
// Errors are sticky: after the first one every method returns its zero value, Peek returns
// None, and Err says what went wrong and where.
package jsonscan

import (
	"encoding/binary"
	"fmt"
	"unicode/utf8"
)

// Kind is the kind of a JSON value, seen from its first byte.
type Kind uint8

// Kinds of values. None means the input has no value at the cursor: it ended, or is not JSON.
const (
	None Kind = iota
	Object
	Array
	String
	Number
	Bool
	Null
)

// MaxDepth is how deeply objects and arrays may nest, the same limit as encoding/json's.
const MaxDepth = 10000

// SyntaxError is returned by Err for input that is not JSON.
type SyntaxError struct {
	Offset int // of the byte where reading stopped
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("invalid JSON at offset %d: %s", e.Offset, e.Msg)
}

// Scanner is a cursor over one JSON text. The zero value is an empty input; use New. A
// Scanner is a small value: copying it saves the position, to read a value twice.
type Scanner struct {
	data  []byte
	pos   int
	depth int
	// open is set just after '{' or '[' was consumed, when the container may still be empty;
	// it tells Member and Element whether a ',' must come first.
	open bool
	msg  string // the first error; "" while there is none
}

// New returns a Scanner at the start of data. The Scanner reads data in place: data must not
// change while the Scanner and the slices it returned are in use.
func New(data []byte) Scanner {
	return Scanner{data: data}
}

// Offset is the position of the cursor in data.
func (s *Scanner) Offset() int { return s.pos }

// Err returns the first syntax error met, or nil.
func (s *Scanner) Err() error {
	if s.msg == "" {
		return nil
	}
	return &SyntaxError{Offset: s.pos, Msg: s.msg}
}

func (s *Scanner) fail(msg string) {
	if s.msg == "" {
		s.msg = msg
	}
}

func (s *Scanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// Peek skips white space and returns the kind of the value that starts at the cursor, without
// consuming it. It returns None at the end of the input, after an error, and before a byte that
// cannot start a value (such as ',' or '}').
func (s *Scanner) Peek() Kind {
	if s.msg != "" {
		return None
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		return None
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return Object
	case c == '[':
		return Array
	case c == '"':
		return String
	case c == '-' || c >= '0' && c <= '9':
		return Number
	case c == 't' || c == 'f':
		return Bool
	case c == 'n':
		return Null
	}
	return None
}

// End skips trailing white space and reports whether the input ended there, with no error on
// the way. It is false for data after the first value.
func (s *Scanner) End() bool {
	if s.msg != "" {
		return false
	}
	s.skipSpace()
	if s.pos < len(s.data) {
		s.fail("data after the top-level value")
		return false
	}
	return true
}

// Skip consumes the next value, whatever its kind, checking its grammar, and returns its raw
// bytes (a sub-slice of data), or nil on error.
func (s *Scanner) Skip() []byte {
	k := s.Peek()
	start := s.pos
	switch k {
	case Object:
		if !s.BeginObject() {
			return nil
		}
		for {
			if _, _, ok := s.Member(); !ok {
				break
			}
			s.Skip()
		}
	case Array:
		if !s.BeginArray() {
			return nil
		}
		for s.Element() {
			s.Skip()
		}
	case String:
		s.str()
	case Number:
		s.Number()
	case Bool:
		s.Bool()
	case Null:
		s.Null()
	default:
		s.fail("expected a value")
	}
	if s.msg != "" {
		return nil
	}
	return s.data[start:s.pos:s.pos] // capped: an append by the caller cannot write over the rest
}

// String consumes a string value. content is what lies between the quotes, undecoded; plain
// reports that it has no escapes and is valid UTF-8, so that content is the decoded string
// byte for byte. Otherwise AppendUnquote decodes it. Invalid UTF-8 is not a syntax error (as
// in encoding/json, which replaces it with U+FFFD).
func (s *Scanner) String() (content []byte, plain bool) {
	if s.Peek() != String {
		s.fail("expected a string")
		return nil, false
	}
	return s.str()
}

// str reads the string whose opening quote is at the cursor.
func (s *Scanner) str() (content []byte, plain bool) {
	s.open = false
	start := s.pos + 1
	escaped, ascii := false, true
	for i := start; i < len(s.data); i++ {
		// The bulk of a string needs no look: it is skipped eight bytes at a time while none of
		// them is special (past the first non-ASCII byte, such bytes no longer are).
		for i+8 <= len(s.data) && !specialIn(binary.LittleEndian.Uint64(s.data[i:]), ascii) {
			i += 8
		}
		for i < len(s.data) && !special[s.data[i]] {
			i++
		}
		if i >= len(s.data) {
			break
		}
		switch c := s.data[i]; {
		case c == '"':
			s.pos = i + 1
			content = s.data[start:i:i]
			return content, !escaped && (ascii || utf8.Valid(content))
		case c == '\\':
			escaped = true
			if !s.escape(i + 1) {
				return nil, false
			}
			i = s.pos - 1
		case c < 0x20:
			s.pos = i
			s.fail("control character in string")
			return nil, false
		default:
			ascii = false
		}
	}
	s.pos = len(s.data)
	s.fail("unterminated string")
	return nil, false
}

// specialIn reports whether one of the eight bytes in w may be special: a quote, a backslash,
// a control character, or, while ascii, a non-ASCII byte. (The tests for a byte below a value
// and for a zero byte, from Sean Anderson's "Bit Twiddling Hacks", are exact for the word.)
func specialIn(w uint64, ascii bool) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	below := (w - 0x20*ones) &^ w & highs
	quote := (w ^ '"'*ones - ones) &^ (w ^ '"'*ones) & highs
	backslash := (w ^ '\\'*ones - ones) &^ (w ^ '\\'*ones) & highs
	m := below | quote | backslash
	if ascii {
		m |= w & highs
	}
	return m != 0
}

// special marks the bytes of a string that need a look: the closing quote, an escape, a
// control character (an error) and non-ASCII bytes (to know whether to check UTF-8).
var special = func() (t [256]bool) {
	for c := range t {
		t[c] = c == '"' || c == '\\' || c < 0x20 || c >= utf8.RuneSelf
	}
	return t
}()

// escape checks the escape whose letter is at data[i] and moves the cursor past it.
func (s *Scanner) escape(i int) bool {
	s.pos = i
	if i >= len(s.data) {
		s.fail("unterminated string")
		return false
	}
	switch s.data[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.pos = i + 1
		return true
	case 'u':
		if i+4 < len(s.data) && isHex(s.data[i+1]) && isHex(s.data[i+2]) && isHex(s.data[i+3]) && isHex(s.data[i+4]) {
			s.pos = i + 5
			return true
		}
		s.fail(`invalid \u escape in string`)
		return false
	}
	s.fail("invalid escape in string")
	return false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// Number consumes a number and returns its text, which follows the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *Scanner) Number() []byte {
	if s.Peek() != Number {
		s.fail("expected a number")
		return nil
	}
	s.open = false
	d, start := s.data, s.pos
	i := start
	if d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && isDigit(d[i]):
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	default:
		s.pos = i
		s.fail("invalid number")
		return nil
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || !isDigit(d[i]) {
			s.pos = i
			s.fail("invalid number: no digit after the decimal point")
			return nil
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || !isDigit(d[i]) {
			s.pos = i
			s.fail("invalid number: no digit in the exponent")
			return nil
		}
		for i < len(d) && isDigit(d[i]) {
			i++
		}
	}
	s.pos = i
	return d[start:i]
}

// Bool consumes true or false.
func (s *Scanner) Bool() bool {
	if s.Peek() != Bool {
		s.fail("expected true or false")
		return false
	}
	if s.data[s.pos] == 't' {
		s.literal("true")
		return s.msg == ""
	}
	s.literal("false")
	return false
}

// Null consumes null.
func (s *Scanner) Null() {
	if s.Peek() != Null {
		s.fail("expected null")
		return
	}
	s.literal("null")
}

func (s *Scanner) literal(word string) {
	s.open = false
	if len(s.data)-s.pos < len(word) || string(s.data[s.pos:s.pos+len(word)]) != word {
		s.fail("invalid literal, expected " + word)
		return
	}
	s.pos += len(word)
}

// BeginObject consumes the '{' that opens an object; Member then steps through its members.
func (s *Scanner) BeginObject() bool { return s.begin(Object, "expected an object") }

// BeginArray consumes the '[' that opens an array; Element then steps through its elements.
func (s *Scanner) BeginArray() bool { return s.begin(Array, "expected an array") }

func (s *Scanner) begin(k Kind, msg string) bool {
	if s.Peek() != k {
		s.fail(msg)
		return false
	}
	if s.depth++; s.depth > MaxDepth {
		s.fail("exceeded max depth")
		return false
	}
	s.pos++
	s.open = true
	return true
}

// next consumes what comes before the next member or element: nothing right after the
// opening bracket, else a ','. It returns false after consuming the closing bracket.
func (s *Scanner) next(closing byte) bool {
	if s.msg != "" {
		return false
	}
	s.skipSpace()
	if s.pos >= len(s.data) {
		s.fail("unexpected end of input")
		return false
	}
	first := s.open
	s.open = false
	switch c := s.data[s.pos]; {
	case c == closing:
		s.pos++
		s.depth--
		return false
	case first:
		return true
	case c == ',':
		s.pos++
		return true
	}
	s.fail("expected ',' or '" + string(closing) + "'")
	return false
}

// Member steps to the next member of the object opened by BeginObject: it consumes the key and
// the ':' and returns the key as String does. The caller then consumes the member's value. At
// the closing '}' Member consumes it and returns ok false, as it does on error.
func (s *Scanner) Member() (key []byte, plain bool, ok bool) {
	if !s.next('}') {
		return nil, false, false
	}
	// A closing brace right after the opening one was handled by next; after a comma it is an
	// error, which String reports.
	key, plain = s.String()
	s.skipSpace()
	if s.msg != "" {
		return nil, false, false
	}
	if s.pos >= len(s.data) || s.data[s.pos] != ':' {
		s.fail("expected ':' after object key")
		return nil, false, false
	}
	s.pos++
	return key, plain, true
}

// Element steps to the next element of the array opened by BeginArray and reports whether
// there is one; the caller then consumes it. At the closing ']' Element consumes it and
// returns false, as it does on error.
func (s *Scanner) Element() bool {
	if !s.next(']') {
		return false
	}
	if s.Peek() == None {
		s.fail("expected a value")
		return false
	}
	return true
}

// Valid reports whether data is one JSON value, with nothing but white space around it.
func Valid(data []byte) bool {
	s := New(data)
	s.Skip()
	return s.End()
}
