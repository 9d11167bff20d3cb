package catalog

import (
	"encoding"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/trustplane/trustplane/internal/jsonscan"
)

// decoder is Unmarshal's fast path: it fills a payload's Go type straight from the JSON text,
// read in place by jsonscan, where encoding/json's Decoder first scans the whole document
// into a buffer, then scans it again while decoding, and costs persist more CPU than anything
// else it does per delivery. It is built from the Go type's fields and json tags at init.
//
// It decodes only the plain shape that ingest produces: members named exactly as the tags
// say, each at most once, no nulls, numbers that fit their field. Anything else (a key in
// another case, which encoding/json would match; a null; a duplicate; a wrong type; trailing
// data) makes it give up, and Unmarshal decodes with encoding/json instead, so the result and
// every error message are encoding/json's. FuzzDecoderAgreesWithEncodingJSON holds the two
// together.
type decoder struct {
	byKey  map[string]int // json member name -> index into fields
	fields []decoderField
}

type decoderField struct {
	index int // of the struct field
	kind  fieldKind
	sub   *decoder // the element type's decoder, for structKind and structSliceKind
}

type fieldKind uint8

const (
	stringKind fieldKind = iota
	boolKind
	intKind
	uintKind
	floatKind
	timeKind
	timePtrKind
	rawKind
	stringSliceKind
	stringMapKind
	structKind
	structSliceKind
)

// Field types the decoder fills: these types exactly, then any type of these kinds (a named
// string type too), then structs and slices of structs it can build a decoder for.
var (
	kindOfType = map[reflect.Type]fieldKind{
		reflect.TypeFor[time.Time]():         timeKind,
		reflect.TypeFor[*time.Time]():        timePtrKind,
		reflect.TypeFor[json.RawMessage]():   rawKind,
		reflect.TypeFor[[]string]():          stringSliceKind,
		reflect.TypeFor[map[string]string](): stringMapKind,
	}
	kindOfKind = map[reflect.Kind]fieldKind{
		reflect.String:  stringKind,
		reflect.Bool:    boolKind,
		reflect.Int:     intKind,
		reflect.Uint64:  uintKind,
		reflect.Float64: floatKind,
	}
)

// newDecoder builds the decoder of struct type t, or returns nil when t has a field it does
// not know how to fill (then encoding/json decodes that type).
func newDecoder(t reflect.Type) *decoder {
	if t.Kind() != reflect.Struct || t.NumField() > 64 { // seen fields are tracked in a uint64
		return nil
	}
	d := &decoder{byKey: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		// ",string" reads a number from a JSON string: not a shape the decoder knows.
		if !sf.IsExported() || sf.Anonymous || name == "" || name == "-" || slices.Contains(strings.Split(opts, ","), "string") {
			return nil
		}
		f := decoderField{index: i}
		ft := sf.Type
		if k, ok := kindOfType[ft]; ok {
			f.kind = k
		} else if decodesItself(ft) {
			return nil // encoding/json would call its own method
		} else if k, ok := kindOfKind[ft.Kind()]; ok {
			f.kind = k
		} else if ft.Kind() == reflect.Struct {
			f.kind, f.sub = structKind, newDecoder(ft)
		} else if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			f.kind, f.sub = structSliceKind, newDecoder(ft.Elem())
		} else {
			return nil
		}
		if (f.kind == structKind || f.kind == structSliceKind) && f.sub == nil {
			return nil
		}
		if _, dup := d.byKey[name]; dup {
			return nil
		}
		d.byKey[name] = len(d.fields)
		d.fields = append(d.fields, f)
	}
	return d
}

func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(reflect.TypeFor[json.Unmarshaler]()) || p.Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// decode fills *v (a struct of the decoder's type, zero) from data, a whole JSON document. It
// reports false when it gave up; v is then partly filled and must be thrown away.
func (d *decoder) decode(data []byte, v reflect.Value) bool {
	s := jsonscan.New(data)
	return d.object(&s, v) && s.End()
}

func (d *decoder) object(s *jsonscan.Scanner, v reflect.Value) bool {
	if s.Peek() != jsonscan.Object || !s.BeginObject() {
		return false
	}
	var seen uint64
	for {
		key, plain, ok := s.Member()
		if !ok {
			return s.Err() == nil
		}
		i, known := d.byKey[string(key)]
		if !plain || !known || seen&(1<<i) != 0 {
			return false
		}
		seen |= 1 << i
		if !d.fields[i].value(s, v.Field(d.fields[i].index)) {
			return false
		}
	}
}

func (f *decoderField) value(s *jsonscan.Scanner, v reflect.Value) bool {
	k := s.Peek()
	switch f.kind {
	case stringKind:
		str, ok := stringValue(s, k)
		v.SetString(str)
		return ok
	case boolKind:
		if k != jsonscan.Bool {
			return false
		}
		v.SetBool(s.Bool())
	case intKind:
		n, err := strconv.ParseInt(string(number(s, k)), 10, 64)
		if err != nil || v.OverflowInt(n) {
			return false
		}
		v.SetInt(n)
	case uintKind:
		n, err := strconv.ParseUint(string(number(s, k)), 10, 64)
		if err != nil {
			return false
		}
		v.SetUint(n)
	case floatKind:
		n, err := strconv.ParseFloat(string(number(s, k)), 64)
		if err != nil {
			return false
		}
		v.SetFloat(n)
	case timeKind, timePtrKind:
		if k != jsonscan.String {
			return false
		}
		var t time.Time
		// Time.UnmarshalJSON is what encoding/json calls, with the same raw text.
		if t.UnmarshalJSON(s.Skip()) != nil {
			return false
		}
		if f.kind == timeKind {
			v.Set(reflect.ValueOf(t))
		} else {
			v.Set(reflect.ValueOf(&t))
		}
	case rawKind:
		if k == jsonscan.Null || k == jsonscan.None {
			return false
		}
		raw := s.Skip()
		v.SetBytes(append([]byte(nil), raw...))
	case stringSliceKind:
		if k != jsonscan.Array || !s.BeginArray() {
			return false
		}
		list := []string{} // encoding/json makes [] an empty slice, not nil
		for s.Element() {
			str, ok := stringValue(s, s.Peek())
			if !ok {
				return false
			}
			list = append(list, str)
		}
		v.Set(reflect.ValueOf(list))
	case stringMapKind:
		if k != jsonscan.Object || !s.BeginObject() {
			return false
		}
		m := map[string]string{}
		for {
			key, plain, ok := s.Member()
			if !ok {
				break
			}
			str, ok := stringValue(s, s.Peek())
			if !ok {
				return false
			}
			m[jsonscan.Unquoted(key, plain)] = str // a repeated key keeps its last value, as in encoding/json
		}
		v.Set(reflect.ValueOf(m))
	case structKind:
		return f.sub.object(s, v)
	case structSliceKind:
		if k != jsonscan.Array || !s.BeginArray() {
			return false
		}
		list := reflect.MakeSlice(v.Type(), 0, 4)
		for s.Element() {
			list = reflect.Append(list, reflect.Zero(v.Type().Elem()))
			if !f.sub.object(s, list.Index(list.Len()-1)) {
				return false
			}
		}
		v.Set(list)
	}
	return s.Err() == nil
}

func stringValue(s *jsonscan.Scanner, k jsonscan.Kind) (string, bool) {
	if k != jsonscan.String {
		return "", false
	}
	content, plain := s.String()
	return jsonscan.Unquoted(content, plain), s.Err() == nil
}

// number reads a number, or returns nil (which no strconv parser accepts) for another kind.
func number(s *jsonscan.Scanner, k jsonscan.Kind) []byte {
	if k != jsonscan.Number {
		return nil
	}
	return s.Number()
}
