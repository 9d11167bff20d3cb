package catalog

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestEveryTypeHasAFastDecoder(t *testing.T) {
	for _, ct := range Types() {
		if ct.decoder == nil {
			t.Errorf("%s: its Go type has a field the fast decoder cannot fill, so persist decodes it with encoding/json", ct.Name)
		}
	}
}

// decodeBoth decodes data with the fast decoder and with encoding/json.
func decodeBoth(t *testing.T, ct *Type, data []byte) (fast Payload, fastOK bool, slow Payload, slowErr error) {
	t.Helper()
	fast = ct.newPayload()
	fastOK = ct.decoder.decode(data, reflect.ValueOf(fast).Elem())
	slow, slowErr = ct.unmarshalJSON(data)
	return fast, fastOK, slow, slowErr
}

func TestFastDecoderTakesWhatIngestSends(t *testing.T) {
	for _, c := range []struct{ typ, file string }{
		{TypeTrace, "testdata/trace.json"}, {TypeObservation, "testdata/observation.json"},
		{TypeScore, "testdata/score.json"}, {TypeLLMCall, "testdata/llmcall.json"}, {TypeFinding, "testdata/finding.json"},
		{TypeLLMCall, "testdata/llmcall-guard.json"},
	} {
		raw, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		ct, _ := Lookup(c.typ)
		fast, ok, slow, err := decodeBoth(t, ct, raw)
		if !ok || err != nil {
			t.Fatalf("%s: fast decoder took it: %v; encoding/json: %v", c.file, ok, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: fast decoder gave\n%+v\nencoding/json\n%+v", c.file, fast, slow)
		}
	}
}

func TestFastDecoderLeavesTheUnusualToEncodingJSON(t *testing.T) {
	ct, _ := Lookup(TypeObservation)
	const base = `"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z"`
	for _, c := range []struct {
		name, data string
		slowErr    string // "" when encoding/json accepts it
	}{
		{"a key in another case, which encoding/json matches", `{` + base + `,"Name":"n"}`, ""},
		{"a null", `{` + base + `,"name":null}`, ""},
		{"a repeated member", `{` + base + `,"name":"a","name":"b"}`, ""},
		{"an unknown member", `{` + base + `,"nope":1}`, "unknown field"},
		{"trailing data", `{` + base + `} {}`, "trailing data"},
		{"a negative count", `{` + base + `,"usage":{"total_tokens":-1}}`, "cannot unmarshal"},
		{"a fraction in a count", `{` + base + `,"usage":{"total_tokens":1.5}}`, "cannot unmarshal"},
		{"a cost out of float64's range", `{` + base + `,"cost":{"total":1e400}}`, "cannot unmarshal"},
		{"a number for a string", `{` + base + `,"name":1}`, "cannot unmarshal"},
		{"a timestamp not in RFC 3339", `{"id":"o","trace_id":"t","type":"SPAN","start_time":"yesterday"}`, "cannot parse"},
		{"an escaped key", `{` + base + `,"n\u0061me":"n"}`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, ok, _, err := decodeBoth(t, ct, []byte(c.data))
			if ok {
				t.Fatal("the fast decoder took it")
			}
			if c.slowErr == "" && err != nil || c.slowErr != "" && (err == nil || !strings.Contains(err.Error(), c.slowErr)) {
				t.Fatalf("encoding/json: %v, want %q", err, c.slowErr)
			}
			// Unmarshal answers exactly as encoding/json does.
			p, uerr := ct.Unmarshal([]byte(c.data))
			slow, serr := ct.unmarshalJSON([]byte(c.data))
			if (uerr == nil) != (serr == nil) || uerr != nil && uerr.Error() != serr.Error() || uerr == nil && !reflect.DeepEqual(p, slow) {
				t.Fatalf("Unmarshal gave %+v, %v; encoding/json %+v, %v", p, uerr, slow, serr)
			}
		})
	}
}

func TestFastDecoderDecodesEscapesAsEncodingJSON(t *testing.T) {
	ct, _ := Lookup(TypeTrace)
	data := []byte(`{"id":"t\u00e9\n","timestamp":"2026-11-29T10:00:00+02:00","tags":[],"metadata":{"k\"":"\ud83d\ude00","bad":"\ud800"},"input":  {"a" : [1, 2]} }`)
	fast, ok, slow, err := decodeBoth(t, ct, data)
	if !ok || err != nil {
		t.Fatalf("fast decoder took it: %v; encoding/json: %v", ok, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("fast decoder gave\n%#v\nencoding/json\n%#v", fast, slow)
	}
	if tr := fast.(*Trace); tr.Tags == nil || string(tr.Input) != `{"a" : [1, 2]}` {
		t.Fatalf("tags %#v (want empty, not nil), input %q (want the raw text)", tr.Tags, tr.Input)
	}
}

// FuzzFastDecoderAgreesWithEncodingJSON holds Unmarshal's fast path to encoding/json: what it
// takes, encoding/json takes too, giving the same value.
func FuzzFastDecoderAgreesWithEncodingJSON(f *testing.F) {
	for _, file := range []string{"testdata/trace.json", "testdata/observation.json", "testdata/score.json", "testdata/llmcall.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"id":"t","timestamp":"2026-11-29T10:00:00Z","tags":["a","b\u0000"],"metadata":{}}`))
	f.Add([]byte(`{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"/v1/chat/completions","model_requested":"m","status":"ok","status_code":200,"attempts":[{"provider":"p","model":"m","status":"success","latency_ms":1.5}],"latency":{"total_ms":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ct := range Types() {
			fast, ok, slow, err := decodeBoth(t, ct, data)
			if ok && (err != nil || !reflect.DeepEqual(fast, slow)) {
				t.Fatalf("%s: fast decoder took %q as\n%#v\nencoding/json: %v\n%#v", ct.Name, data, fast, err, slow)
			}
		}
	})
}

func TestFastDecoderIsOnlyBuiltForShapesItKnows(t *testing.T) {
	for name, v := range map[string]any{
		"a number read from a string": struct {
			N uint64 `json:"n,string"`
		}{},
		"an untagged field": struct{ N uint64 }{},
		"an interface": struct {
			V any `json:"v"`
		}{},
		"a map of numbers": struct {
			M map[string]int `json:"m"`
		}{},
		"a string type that decodes itself": struct {
			L selfDecoding `json:"l"`
		}{},
		"bytes, which encoding/json reads as base64": struct {
			B []byte `json:"b"`
		}{},
	} {
		if newDecoder(reflect.TypeOf(v)) != nil {
			t.Errorf("%s: built a decoder, want none (encoding/json decodes such a type)", name)
		}
	}
	type usage struct {
		N uint64 `json:"n,omitempty"`
	}
	if newDecoder(reflect.TypeOf(struct {
		U []usage `json:"u,omitempty"`
	}{})) == nil {
		t.Error("no decoder for a slice of tagged structs")
	}
}

type selfDecoding string

func (s *selfDecoding) UnmarshalText(b []byte) error {
	*s = selfDecoding(strings.ToUpper(string(b)))
	return nil
}
