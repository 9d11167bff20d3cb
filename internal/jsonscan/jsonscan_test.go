package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// compact rewrites the value at the cursor without white space using the structured API, and
// checks every string's decoding against encoding/json's.
func compact(t *testing.T, s *Scanner, out *bytes.Buffer) {
	t.Helper()
	switch s.Peek() {
	case Object:
		s.BeginObject()
		out.WriteByte('{')
		for n := 0; ; n++ {
			key, plain, ok := s.Member()
			if !ok {
				break
			}
			if n > 0 {
				out.WriteByte(',')
			}
			checkString(t, key, plain)
			out.WriteString(`"` + string(key) + `":`)
			compact(t, s, out)
		}
		out.WriteByte('}')
	case Array:
		s.BeginArray()
		out.WriteByte('[')
		for n := 0; s.Element(); n++ {
			if n > 0 {
				out.WriteByte(',')
			}
			compact(t, s, out)
		}
		out.WriteByte(']')
	case String:
		content, plain := s.String()
		if s.Err() == nil {
			checkString(t, content, plain)
		}
		out.WriteString(`"` + string(content) + `"`)
	case Number:
		out.Write(s.Number())
	case Bool:
		if s.Bool() {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
	case Null:
		s.Null()
		out.WriteString("null")
	default:
		s.Skip() // records the error
	}
}

func checkString(t *testing.T, content []byte, plain bool) {
	t.Helper()
	var want string
	if err := json.Unmarshal([]byte(`"`+string(content)+`"`), &want); err != nil {
		t.Fatalf("string %q passed the scanner, encoding/json says %v", content, err)
	}
	if got := string(AppendUnquote(nil, content)); got != want {
		t.Fatalf("AppendUnquote(%q) = %q, encoding/json %q", content, got, want)
	}
	if plain && string(content) != want {
		t.Fatalf("string %q reported plain, decodes to %q", content, want)
	}
}

func FuzzScanner(f *testing.F) {
	for _, seed := range []string{
		`{"a":[1,-2.5e+3,true,false,null,"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"],"b":{}}`,
		` [ ] `, `{"a":1,}`, `[1,]`, `{"a" 1}`, `01`, `-`, `1.`, `1e`, `"\ud800"`, `"\udc00\ud800x"`,
		"\"\xff\xfe\"", `"é"`, `tru`, `nul`, `{"a":1}{}`, `"\u12"`, "\"\x01\"", `[1 2]`, `{"a":1 "b":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want := json.Valid(data)
		if got := Valid(data); got != want {
			t.Fatalf("Valid(%q) = %v, encoding/json says %v", data, got, want)
		}
		s := New(data)
		var out bytes.Buffer
		compact(t, &s, &out)
		ok := s.End()
		if ok != want {
			t.Fatalf("walking %q: ok %v (%v), encoding/json says %v", data, ok, s.Err(), want)
		}
		if !ok {
			return
		}
		var ref bytes.Buffer
		if err := json.Compact(&ref, data); err != nil {
			t.Fatal(err)
		}
		if out.String() != ref.String() {
			t.Fatalf("walk of %q gave %s, json.Compact %s", data, out.String(), ref.String())
		}
		s = New(data)
		if raw := s.Skip(); !bytes.Equal(raw, bytes.TrimSpace(data)) {
			t.Fatalf("Skip(%q) = %q", data, raw)
		}
	})
}

func TestDepthLimitIsEncodingJSONs(t *testing.T) {
	for _, depth := range []int{MaxDepth, MaxDepth + 1} {
		for _, open := range []string{"[", `{"a":`} {
			closing := map[string]string{"[": "]", `{"a":`: "}"}[open]
			data := []byte(strings.Repeat(open, depth) + "1" + strings.Repeat(closing, depth))
			if got, want := Valid(data), json.Valid(data); got != want {
				t.Errorf("depth %d of %s: Valid %v, encoding/json %v", depth, open, got, want)
			}
		}
	}
}

func TestErrorsSayWhere(t *testing.T) {
	s := New([]byte(`{"a": tru}`))
	s.Skip()
	err := s.Err()
	if err == nil || !strings.Contains(err.Error(), "offset 6") || !strings.Contains(err.Error(), "true") {
		t.Fatalf("error = %v", err)
	}
	if s.Peek() != None || s.End() {
		t.Fatal("the error is not sticky")
	}
}

func TestRawValuesOfABatch(t *testing.T) {
	s := New([]byte(` [ {"id": "a"}, "b" ,3 ] `))
	var raws []string
	for s.BeginArray(); s.Element(); {
		raws = append(raws, string(s.Skip()))
	}
	if !s.End() || strings.Join(raws, "|") != `{"id": "a"}|"b"|3` {
		t.Fatalf("raw elements %q, err %v", raws, s.Err())
	}
}

func TestMemberRequiresTheValueToBeConsumed(t *testing.T) {
	s := New([]byte(`{"a":1,"b":2}`))
	s.BeginObject()
	if _, _, ok := s.Member(); !ok {
		t.Fatal(s.Err())
	}
	if _, _, ok := s.Member(); ok || s.Err() == nil {
		t.Fatal("Member skipped an unread value")
	}
}

func TestScanningDoesNotAllocate(t *testing.T) {
	data := []byte(`{"id":"obs-1","n":[1,2.5e3,true,null],"s":"x\u00e9\n","o":{"k":"v"}}`)
	allocs := testing.AllocsPerRun(100, func() {
		if !Valid(data) {
			t.Fatal("invalid")
		}
	})
	if allocs != 0 {
		t.Fatalf("Valid allocates %v times", allocs)
	}
}

// Checking a request with a long conversation (mostly plain text, a line break escaped every
// 60 bytes, some non-ASCII), beside encoding/json's Valid, the reference, in the same run.
func BenchmarkValidLongStrings(b *testing.B) {
	line := strings.Repeat("Earlier in this conversation: lorem ipsum dolor sit amet.\\n", 400)
	doc := []byte(`{"model":"m","messages":[{"role":"user","content":"` + line + `"},{"role":"assistant","content":"` + strings.Repeat("Grüße, ça va. ", 1000) + `"}]}`)
	b.Run("jsonscan", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if !Valid(doc) {
				b.Fatal("not valid")
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(doc)))
		for b.Loop() {
			if !json.Valid(doc) {
				b.Fatal("not valid")
			}
		}
	})
}

// Strings are skipped eight bytes at a time: a special byte at any offset of the word, and at
// the string's ends, is still seen.
func TestSpecialBytesAtEveryOffset(t *testing.T) {
	for _, special := range []string{"\x01", "\x1f", `\n`, `\"`, `\u00e9`, "é", "\xff", `\x`, "\x7f", " ", "~"} {
		for before := 0; before <= 17; before++ {
			for after := 0; after <= 9; after++ {
				doc := []byte(`"` + strings.Repeat("a", before) + special + strings.Repeat("b", after) + `"`)
				if Valid(doc) != json.Valid(doc) {
					t.Fatalf("%q: Valid %v, encoding/json %v", doc, Valid(doc), json.Valid(doc))
				}
				if !json.Valid(doc) {
					continue
				}
				s := New(doc)
				content, plain := s.String()
				var want string
				_ = json.Unmarshal(doc, &want)
				if got := string(AppendUnquote(nil, content)); got != want || plain != (string(content) == want) {
					t.Fatalf("%q: read %q (plain %v), encoding/json %q", doc, got, plain, want)
				}
			}
		}
	}
}
