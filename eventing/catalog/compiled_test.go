package catalog

import (
	"fmt"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/trustplane/trustplane/internal/jsonscan"
)

// benchObservationData is an LLM generation of about 600 bytes, as ingest sees them.
const benchObservationData = `{"id":"obs-1","trace_id":"trace-1","type":"GENERATION","name":"chat","start_time":"2026-11-29T10:00:00Z","end_time":"2026-11-29T10:00:01.2Z",` +
	`"model":"gpt-4o-mini","input":[{"role":"user","content":"What is the capital of France? Answer in one word, please."}],` +
	`"output":{"role":"assistant","content":"Paris."},"usage":{"prompt_tokens":21,"completion_tokens":2,"total_tokens":23},` +
	`"cost":{"input":0.00000315,"output":0.0000012,"total":0.00000435},"metadata":{"route":"/v1/chat/completions","region":"eu-west-1"}}`

// validExamples are ordinary valid events of every type, which the fast path must accept.
func validExamples(t testing.TB) map[string][]string {
	t.Helper()
	out := map[string][]string{
		TypeObservation: {
			benchObservationData,
			`{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00+02:00","status_message":"said \"no\"\n\ttwice","metadata":{"ré":"wörld ✓","e":"\u00e9"}}`,
			`{"id":"o","trace_id":"t","type":"EVENT","start_time":"2026-11-29T10:00:00.123456789-05:30","usage":{"prompt_tokens":0,"total_tokens":1000000000000},"cost":{"total":0},"level":"ERROR"}`,
			" {\n \"id\" : \"o\" , \"trace_id\":\"t\",\"type\":\"SPAN\",\"start_time\":\"2026-11-29T10:00:00Z\",\"input\":null,\"output\":[1,2.5e-3,true,{\"a\":\"\\ud83d\\ude00\"}]}\n",
		},
		TypeTrace: {`{"id":"t","timestamp":"2026-11-29T10:00:00Z","tags":[],"metadata":{}}`},
		TypeScore: {`{"id":"s","trace_id":"t","name":"n","value":-1.5e3,"timestamp":"2026-11-29T10:00:00Z"}`},
		TypeLLMCall: {
			`{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"embeddings","model_requested":"m","status":"success","status_code":200,"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}}`,
		},
	}
	for typ, file := range map[string]string{TypeTrace: "testdata/trace.json", TypeObservation: "testdata/observation.json",
		TypeScore: "testdata/score.json", TypeLLMCall: "testdata/llmcall.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		out[typ] = append(out[typ], string(raw))
	}
	return out
}

func TestTypicalEventsTakeTheFastPath(t *testing.T) {
	for typ, examples := range validExamples(t) {
		ct, _ := Lookup(typ)
		for _, data := range examples {
			key, ok := ct.fast.accept([]byte(data), ct.fastKeys)
			if !ok {
				t.Errorf("%s: the fast path did not accept %s", typ, data)
				continue
			}
			slowKey, problems := ct.validateSlow([]byte(data))
			if len(problems) > 0 || key != slowKey {
				t.Errorf("%s: fast key %q, jsonschema key %q with problems %v", typ, key, slowKey, problems)
			}
		}
	}
}

func TestFastPathLeavesRareFormsToJSONSchema(t *testing.T) {
	const base = `"id":"o","type":"SPAN","start_time":"2026-11-29T10:00:00Z"`
	cases := map[string]string{
		"duplicate key field":     `{` + base + `,"trace_id":"a","trace_id":"b"}`,
		"integer as 1.0":          `{` + base + `,"trace_id":"t","usage":{"total_tokens":1.0}}`,
		"integer as 1e3":          `{` + base + `,"trace_id":"t","usage":{"total_tokens":1e3}}`,
		"long number under bound": `{` + base + `,"trace_id":"t","cost":{"total":0.00000000000000000000000000000000000000001}}`,
		"maxProperties counting duplicates": `{` + base + `,"trace_id":"t","metadata":{` +
			strings.Repeat(`"k":"v",`, 64) + `"k":"v"}}`,
	}
	ct, _ := Lookup(TypeObservation)
	for name, data := range cases {
		if _, ok := ct.fast.accept([]byte(data), ct.fastKeys); ok {
			t.Errorf("%s: the fast path accepted %s", name, data)
		}
		key, problems := ct.Validate([]byte(data))
		slowKey, slowProblems := ct.validateSlow([]byte(data))
		if len(slowProblems) > 0 {
			t.Errorf("%s: jsonschema rejected valid data: %v", name, slowProblems)
		}
		// An integer written 1.0 or 1e3 satisfies the schema, but the Go type cannot hold it.
		if storable := !strings.HasPrefix(name, "integer as"); !storable {
			if len(problems) == 0 || !strings.Contains(problems[0].Detail, "total_tokens") {
				t.Errorf("%s: problems %v, want one naming total_tokens", name, problems)
			}
		} else if key != slowKey || len(problems) > 0 {
			t.Errorf("%s: Validate %q %v, jsonschema %q %v", name, key, problems, slowKey, slowProblems)
		}
	}
	// The jsonschema validator reads the last of duplicate keys: so does the key returned.
	if key, _ := ct.Validate([]byte(cases["duplicate key field"])); key != "b" {
		t.Errorf("partition key of duplicates = %q, want the last", key)
	}
}

func TestSchemaKeywordsTheFastPathDoesNotKnowPanic(t *testing.T) {
	for _, schema := range []string{
		`{"type":"object","properties":{"id":{"type":"string","format":"email"}}}`,
		`{"type":"object","properties":{"id":{"type":"string"},"tags":{"type":"array","uniqueItems":true}}}`,
		`{"type":"object","properties":{"id":{"const":"x"}}}`,
		`{"type":"object","properties":{"id":{"type":"string"}},"patternProperties":{"^x":true}}`,
		`{"type":"object","properties":{"id":{"$ref":"other.json#/$defs/id"}}}`,
		`{"type":"object","properties":{"id":{"type":"string"},"n":{"type":"number","exclusiveMinimum":0}}}`,
		`{"type":"object","properties":{"id":{"enum":["a",1]}}}`,
		`{"type":"object","properties":{"id":{"type":"string"},"n":{"$defs":{}}}}`,
		`{"type":"object","properties":{"id":{"type":"strin"}}}`,
		`{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"id":{"type":"string"}}}`,
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "x.json") {
					t.Errorf("no panic naming the schema for %s: %v", schema, r)
				}
			}()
			newType("x", "x.json", []byte(schema), func() Payload { return new(Trace) }, []string{"id"})
		}()
	}
}

// The compiler is generic: a schema using the keywords differently than the catalog does is
// checked the same way by both paths.
func TestCompilerIsGeneric(t *testing.T) {
	schema := `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["id","extra"],
		"properties":{"id":{"$ref":"#/$defs/id","maxLength":3},"n":{"type":["integer","null"],"minimum":-2,"maximum":2.5},
		"list":{"type":"array","maxItems":2,"items":{"$ref":"#/$defs/id"}},"any":{},"no":false},
		"additionalProperties":{"type":"string","enum":["x","y"]},
		"$defs":{"id":{"type":"string","minLength":1,"pattern":"^[a-z]+$"}}}`
	ct := newType("x", "x.json", []byte(schema), func() Payload { return new(Trace) }, []string{"id"})
	for data, want := range map[string]bool{
		`{"id":"ab","extra":"x"}`:                      true,
		`{"id":"abcd","extra":"x"}`:                    false,
		`{"id":"AB","extra":"x"}`:                      false,
		`{"id":"ab"}`:                                  false,
		`{"id":"ab","extra":"z"}`:                      false,
		`{"id":"ab","extra":"x","n":null}`:             true,
		`{"id":"ab","extra":"x","n":-2}`:               true,
		`{"id":"ab","extra":"x","n":-3}`:               false,
		`{"id":"ab","extra":"x","n":2}`:                true,
		`{"id":"ab","extra":"x","n":3}`:                false,
		`{"id":"ab","extra":"x","list":["a","b"]}`:     true,
		`{"id":"ab","extra":"x","list":["a","B"]}`:     false,
		`{"id":"ab","extra":"x","list":["a","b","c"]}`: false,
		`{"id":"ab","extra":"x","any":[{}]}`:           true,
		`{"id":"ab","extra":"x","no":1}`:               false,
	} {
		key, ok := ct.fast.accept([]byte(data), ct.fastKeys)
		_, problems := ct.validateSlow([]byte(data))
		if ok != want || ok && (len(problems) > 0 || key != "ab") {
			t.Errorf("%s: fast path %v (key %q), want %v; jsonschema problems %v", data, ok, key, want, problems)
		}
	}
}

func FuzzDecimalCompare(f *testing.F) {
	for _, seed := range [][2]string{{"0", "-0"}, {"1.5e3", "1500"}, {"0.001", "1e-3"}, {"-2", "-10"}, {"100", "99.99"}, {"1000000000000", "1e12"}} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if !isJSONNumber(a) || !isJSONNumber(b) {
			return
		}
		da, okA := parseDecimal([]byte(a))
		db, okB := parseDecimal([]byte(b))
		if !okA || !okB {
			return
		}
		ra, _ := new(big.Rat).SetString(a)
		rb, _ := new(big.Rat).SetString(b)
		if got, want := da.cmp(&db), ra.Cmp(rb); got != want {
			t.Fatalf("cmp(%s, %s) = %d, big.Rat says %d", a, b, got, want)
		}
	})
}

func isJSONNumber(text string) bool {
	s := jsonscan.New([]byte(text))
	return s.Peek() == jsonscan.Number && len(s.Number()) == len(text)
}

// FuzzFastPathIsSound holds the fast path to the jsonschema validator: whatever the fast path
// accepts, the jsonschema validator accepts, with the same partition key.
func FuzzFastPathIsSound(f *testing.F) {
	for _, examples := range validExamples(f) {
		for _, data := range examples {
			f.Add([]byte(data))
		}
	}
	const base = `"id":"o","type":"SPAN","start_time":"2026-11-29T10:00:00Z"`
	for _, data := range []string{
		`{` + base + `,"trace_id":"a","trace_id":"b"}`,
		`{` + base + `,"trace\u005fid":"b","trace_id":"a"}`,
		`{` + base + `,"trace_id":"\u0041"}`,
		`{` + base + `,"trace_id":""}`,
		`{` + base + `,"trace_id":"t","usage":{"total_tokens":1.0}}`,
		`{` + base + `,"trace_id":"t","usage":{"total_tokens":-0}}`,
		`{` + base + `,"trace_id":"t","usage":{"total_tokens":1000000000001}}`,
		`{` + base + `,"trace_id":"t","cost":{"total":-0.0}}`,
		`{` + base + `,"trace_id":"t","cost":{"total":1e9}}`,
		`{` + base + `,"trace_id":"t","cost":{"total":1.0000000001e9}}`,
		`{` + base + `,"trace_id":"t","end_time":"2026-12-31T23:59:60Z"}`,
		`{` + base + `,"trace_id":"t","end_time":"2026-11-29T10:00:00z"}`,
		`{` + base + `,"trace_id":"t","end_time":"2026-11-29 10:00:00Z"}`,
		`{` + base + `,"trace_id":"a b"}`,
		`{` + base + `,"trace_id":"\u00e9"}`,
		`{` + base + `,"trace_id":"t","metadata":{"a":1}}`,
		`{` + base + `,"trace_id":"t","name":"` + strings.Repeat("é", 512) + `"}`,
		`{` + base + `,"trace_id":"t","name":"` + strings.Repeat("é", 513) + `"}`,
		`{` + base + `,"trace_id":"t","name":"\ud800"}`,
		"{" + base + ",\"trace_id\":\"t\",\"name\":\"\xff\"}",
		`{` + base + `,"trace_id":"t","level":"DEBUG "}`,
		`{` + base + `,"trace_id":"t"} {}`,
		`{` + base + `,"trace_id":"t",}`,
		`{"id":"t","timestamp":"2026-11-29T10:00:00Z","tags":["a",1]}`,
		`{"id":"t","timestamp":"2026-11-29T10:00:00Z","tags":[` + strings.Repeat(`"a",`, 64) + `"a"]}`,
		`{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"embeddings","model_requested":"m","status":"success","status_code":99,"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}}`,
		`{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"embeddings","model_requested":"m","status":"success","status_code":200,"attempts":[{}],"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}}`,
		`{"id":"c","trace_id":"","timestamp":"2026-11-29T10:00:00Z","endpoint":"embeddings","model_requested":"m","status":"success","status_code":200,"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}}`,
		`[]`, `null`, `{}`, ``,
	} {
		f.Add([]byte(data))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ct := range Types() {
			key, ok := ct.fast.accept(data, ct.fastKeys)
			if !ok {
				continue
			}
			slowKey, problems := ct.validateSlow(data)
			if len(problems) > 0 || key != slowKey {
				t.Fatalf("%s: the fast path accepted %q with key %q; jsonschema: key %q, problems %v", ct.Name, data, key, slowKey, problems)
			}
			// What the edge accepts, stores downstream can decode.
			if _, err := ct.Unmarshal(data); err != nil {
				t.Fatalf("%s: the fast path accepted %q, Unmarshal says %v", ct.Name, data, err)
			}
		}
	})
}

// Numbers whose exponents the jsonschema validator cannot handle (it panics beyond an int, and
// spends milliseconds on each in the millions) get a problem instead of reaching it.
func TestHugeExponentsAreProblemsNotPanics(t *testing.T) {
	ct, _ := Lookup(TypeObservation)
	const base = `{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z"`
	for data, pointer := range map[string]string{
		base + `,"cost":{"input":1e100000000}}`:      "/cost/input",
		base + `,"cost":{"input":1.5e-999999999}}`:   "/cost/input",
		base + `,"usage":{"total_tokens":1E+20001}}`: "/usage/total_tokens",
		// Elsewhere the fast path skips numbers; data it leaves to the validator is checked.
		base + `,"input":[{"a":[0,1e99999999999]}],"usage":{"total_tokens":1.0}}`: "/input/0/a/1",
	} {
		_, problems := ct.Validate([]byte(data))
		if len(problems) != 1 || problems[0].Pointer != pointer || !strings.Contains(problems[0].Detail, "out of range") {
			t.Errorf("%s: problems %v, want one at %s", data, problems, pointer)
		}
	}
	if _, problems := ct.Validate([]byte(base + `,"cost":{"input":1e-9999}}`)); len(problems) != 0 {
		t.Errorf("exponent within range: %v", problems)
	}
}

// A number of hundreds of thousands of digits costs the jsonschema validator about a second
// (its reading of digits is quadratic); one event can hold one, so such numbers are problems
// before the validator runs.
func TestLongNumbersAreProblemsNotSeconds(t *testing.T) {
	ct, _ := Lookup(TypeObservation)
	const base = `{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z"`
	long := strings.Repeat("1", 250000)
	for data, pointer := range map[string]string{
		base + `,"cost":{"total":0.` + long + `}}`:                                "/cost/total",
		base + `,"usage":{"total_tokens":` + long + `}}`:                          "/usage/total_tokens",
		base + `,"usage":{"total_tokens":1.` + strings.Repeat("0", 250000) + `}}`: "/usage/total_tokens",
	} {
		_, problems := ct.Validate([]byte(data))
		if len(problems) != 1 || problems[0].Pointer != pointer || !strings.Contains(problems[0].Detail, "longer than") {
			t.Errorf("%.80s...: problems %.200v, want one at %s", data, problems, pointer)
		}
	}
	if _, problems := ct.Validate([]byte(base + `,"cost":{"total":0.` + strings.Repeat("1", 998) + `}}`)); len(problems) != 0 {
		t.Errorf("a number of 1000 characters: %v", problems)
	}
}
