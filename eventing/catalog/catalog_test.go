package catalog

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func mustDecode(t *testing.T, typ, file string) Payload {
	t.Helper()
	ct, ok := Lookup(typ)
	if !ok {
		t.Fatalf("type %s not in catalog", typ)
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	p, problems := ct.Decode(raw)
	if len(problems) > 0 {
		t.Fatalf("%s: unexpected problems: %v", file, problems)
	}
	return p
}

func TestValidateReturnsTheGoTypesPartitionKey(t *testing.T) {
	for typ, file := range map[string]string{TypeTrace: "testdata/trace.json", TypeObservation: "testdata/observation.json", TypeScore: "testdata/score.json"} {
		ct, _ := Lookup(typ)
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		key, problems := ct.Validate(raw)
		p := mustDecode(t, typ, file)
		if len(problems) > 0 || key != p.PartitionKey() {
			t.Errorf("%s: Validate key %q (%v), PartitionKey %q", typ, key, problems, p.PartitionKey())
		}
	}
	ct, _ := Lookup(TypeTrace)
	if _, problems := ct.Validate([]byte(`{"id":"t","timestamp":"2026-12-31T23:59:60Z"}`)); len(problems) == 0 {
		t.Error("a leap second was accepted, but Go cannot decode it")
	}
}

// Times are bounded to what ClickHouse's DateTime columns store, on both validation paths (the
// observation's escaped id sends it down the slow one).
func TestDateTimesOutsideTheStorableRangeAreProblems(t *testing.T) {
	trace, _ := Lookup(TypeTrace)
	obs, _ := Lookup(TypeObservation)
	for ts, ok := range map[string]bool{
		"1970-01-01T00:00:01Z":      true,
		"2106-02-07T06:28:15Z":      true,
		"1970-01-01T00:00:00.999Z":  false,
		"1969-12-31T23:59:59Z":      false,
		"0001-01-01T00:00:00Z":      false,
		"2106-02-07T06:28:16Z":      false,
		"9999-12-31T23:59:59+01:00": false,
	} {
		for name, data := range map[string]string{
			"fast": `{"id":"t","timestamp":"` + ts + `"}`,
			"slow": `{"id":"\u006f","trace_id":"t","type":"SPAN","start_time":"` + ts + `"}`,
		} {
			ct := trace
			if name == "slow" {
				ct = obs
			}
			_, problems := ct.Validate([]byte(data))
			if ok != (len(problems) == 0) || (!ok && !strings.Contains(fmt.Sprint(problems), "outside 1970-01-01T00:00:01Z to 2106-02-07T06:28:15Z")) {
				t.Errorf("%s path, %s: problems %v, want accepted %v", name, ts, problems, ok)
			}
		}
	}
}

func TestDecodeValidExamples(t *testing.T) {
	tr := mustDecode(t, TypeTrace, "testdata/trace.json").(*Trace)
	if tr.ID != "trace-1" || tr.PartitionKey() != "trace-1" || tr.Metadata["region"] != "eu-west-1" || len(tr.Tags) != 2 {
		t.Errorf("trace decoded wrongly: %+v", tr)
	}
	if want := time.Date(2026, 11, 29, 10, 0, 0, 123e6, time.UTC); !tr.Timestamp.Equal(want) {
		t.Errorf("timestamp = %v, want %v", tr.Timestamp, want)
	}
	if string(tr.Input) != `{"question":"hi"}` || string(tr.Output) != `"hello"` {
		t.Errorf("input/output = %s / %s", tr.Input, tr.Output)
	}

	ob := mustDecode(t, TypeObservation, "testdata/observation.json").(*Observation)
	if ob.PartitionKey() != "trace-1" || ob.Usage.TotalTokens != 15 || ob.Cost.Total != 0.0000036 || ob.Model != "gpt-4o-mini" {
		t.Errorf("observation decoded wrongly: %+v", ob)
	}
	if ob.EndTime == nil || ob.CompletionStartTime == nil || !ob.EndTime.After(ob.StartTime) {
		t.Errorf("observation times wrong: %+v", ob)
	}

	sc := mustDecode(t, TypeScore, "testdata/score.json").(*Score)
	if sc.PartitionKey() != "trace-1" || sc.Value != 0.9 || sc.ObservationID != "obs-1" {
		t.Errorf("score decoded wrongly: %+v", sc)
	}
}

func TestDecodeNamesEachProblem(t *testing.T) {
	cases := []struct {
		name, typ, data string
		wantPointer     string
		wantDetail      string
	}{
		{"not json", TypeTrace, `{"id":`, "", "not valid JSON"},
		{"not an object", TypeTrace, `[1,2]`, "", "object"},
		{"missing id", TypeTrace, `{"timestamp":"2026-11-29T10:00:00Z"}`, "", "id"},
		{"empty id", TypeTrace, `{"id":"","timestamp":"2026-11-29T10:00:00Z"}`, "/id", "minLength"},
		{"id with space", TypeTrace, `{"id":"a b","timestamp":"2026-11-29T10:00:00Z"}`, "/id", "pattern"},
		{"bad timestamp", TypeTrace, `{"id":"t","timestamp":"yesterday"}`, "/timestamp", "date-time"},
		{"unknown field", TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z","tenant":"other"}`, "", "tenant"},
		{"metadata not strings", TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z","metadata":{"a":1}}`, "/metadata/a", "string"},
		{"bad observation type", TypeObservation, `{"id":"o","trace_id":"t","type":"LLM","start_time":"2026-11-29T10:00:00Z"}`, "/type", "SPAN"},
		{"negative tokens", TypeObservation, `{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z","usage":{"prompt_tokens":-1}}`, "/usage/prompt_tokens", "minimum"},
		{"fractional tokens", TypeObservation, `{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z","usage":{"total_tokens":1.5}}`, "/usage/total_tokens", "integer"},
		{"negative cost", TypeObservation, `{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z","cost":{"total":-2}}`, "/cost/total", "minimum"},
		{"score without name", TypeScore, `{"id":"s","trace_id":"t","timestamp":"2026-11-29T10:00:00Z"}`, "", "name"},
		{"score bad source", TypeScore, `{"id":"s","trace_id":"t","name":"n","timestamp":"2026-11-29T10:00:00Z","source":"ME"}`, "/source", "API"},
		{"label too long", TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z","name":"` + strings.Repeat("x", 513) + `"}`, "/name", "maxLength"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ct, _ := Lookup(c.typ)
			p, problems := ct.Decode([]byte(c.data))
			if p != nil {
				t.Fatalf("accepted invalid data: %+v", p)
			}
			for _, pr := range problems {
				if pr.Pointer == c.wantPointer && strings.Contains(pr.Detail, c.wantDetail) {
					return
				}
			}
			t.Fatalf("problems %v do not name %q with %q", problems, c.wantPointer, c.wantDetail)
		})
	}
}

// The schema is the contract users read; the Go type is what functions use. They must describe
// the same fields.
func TestSchemasMatchGoTypes(t *testing.T) {
	for _, ct := range Types() {
		var schema struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		}
		if err := json.Unmarshal(ct.Schema(), &schema); err != nil {
			t.Fatalf("%s: %v", ct.Name, err)
		}
		var fromSchema []string
		for k := range schema.Properties {
			fromSchema = append(fromSchema, k)
		}
		var fromGo []string
		required := map[string]bool{}
		rt := reflect.TypeOf(ct.newPayload()).Elem()
		for i := 0; i < rt.NumField(); i++ {
			tag := rt.Field(i).Tag.Get("json")
			name, opts, _ := strings.Cut(tag, ",")
			fromGo = append(fromGo, name)
			if !strings.Contains(opts, "omit") {
				required[name] = true
			}
		}
		sort.Strings(fromSchema)
		sort.Strings(fromGo)
		if !reflect.DeepEqual(fromSchema, fromGo) {
			t.Errorf("%s: schema properties %v, Go fields %v", ct.Name, fromSchema, fromGo)
		}
		for _, r := range schema.Required {
			if !required[r] {
				t.Errorf("%s: %s is required by the schema but optional in Go", ct.Name, r)
			}
		}
	}
}

func TestCatalogIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range Types() {
		if !strings.Contains(string(doc), "`"+ct.Name+"`") {
			t.Errorf("README.md does not document %s", ct.Name)
		}
		if !(strings.HasPrefix(ct.Name, TelemetryPrefix) || strings.HasPrefix(ct.Name, SecurityPrefix)) || !strings.HasSuffix(ct.Name, ".v1") {
			t.Errorf("%s does not follow io.trustplane.{telemetry,security}.<name>.v<N>", ct.Name)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, file := range []string{"testdata/trace.json", "testdata/observation.json", "testdata/score.json", "testdata/finding.json"} {
		raw, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"id":"t","timestamp":"0000-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"id":"t","timestamp":"9999-12-31T23:59:60Z"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, ct := range Types() {
			p, problems := ct.Decode(data)
			if (p == nil) == (len(problems) == 0) {
				t.Fatalf("%s: payload %v with problems %v", ct.Name, p, problems)
			}
			key, vproblems := ct.Validate(data)
			if (len(vproblems) == 0) != (p != nil) {
				t.Fatalf("%s: Validate problems %v, Decode problems %v", ct.Name, vproblems, problems)
			}
			if p == nil {
				continue
			}
			// What the edge accepts, stores downstream can decode, with the same partition key.
			u, err := ct.Unmarshal(data)
			if err != nil || u.PartitionKey() != key || key != p.PartitionKey() || key == "" {
				t.Fatalf("%s: Validate key %q, Unmarshal %v (%v), Decode key %q", ct.Name, key, u, err, p.PartitionKey())
			}
		}
	})
}

func TestUnmarshalIsStrict(t *testing.T) {
	ct, _ := Lookup(TypeTrace)
	p, err := ct.Unmarshal([]byte(`{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`))
	if err != nil || p.PartitionKey() != "t" {
		t.Fatalf("valid data: %v, %v", p, err)
	}
	const valid = `{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`
	for _, bad := range []string{`{"id":"t","tenant":"x"}`, `{"id":1}`, `{"id":"t"} {}`, `[`, `{"timestamp":"noon"}`,
		valid + `]`, valid + `}`, valid + ` ]]`, valid + `,`, valid + "\x00"} {
		if _, err := ct.Unmarshal([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}

// Ingest answers 2xx for what Validate accepts, and persist then decodes it with Unmarshal: data
// the schema allows but the Go types cannot hold must be a problem at the edge, or the event
// would be accepted and then dead-lettered.
func TestWhatValidateAcceptsUnmarshalDecodes(t *testing.T) {
	const (
		ts    = `"2026-11-29T10:00:00Z"`
		obs   = `{"id":"o","trace_id":"t","type":"SPAN"`
		score = `{"id":"s","trace_id":"t","name":"n","timestamp":` + ts
		call  = `{"id":"c","timestamp":` + ts + `,"endpoint":"embeddings","model_requested":"m","status":"success"`
		lat   = `"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1}`
	)
	for _, c := range []struct{ name, typ, data, want string }{
		{"an escape in a date-time", TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00\u005a"}`, "parsing time"},
		{"an escaped digit in a date-time", TypeObservation, obs + `,"start_time":"\u0032026-11-29T10:00:00Z"}`, "parsing time"},
		{"an escaped date-time in the slow path", TypeObservation, obs + `,"type":"SPAN","start_time":"2026-11-29T10:00:00\u005a"}`, "parsing time"},
		{"a count written 1.0", TypeObservation, obs + `,"start_time":` + ts + `,"usage":{"total_tokens":1.0}}`, "total_tokens"},
		{"a count written -0", TypeObservation, obs + `,"start_time":` + ts + `,"usage":{"total_tokens":-0}}`, "total_tokens"},
		{"a count written 1e3", TypeObservation, obs + `,"start_time":` + ts + `,"usage":{"total_tokens":1e3}}`, "total_tokens"},
		{"a status code written 200.0", TypeLLMCall, call + `,"status_code":200.0,` + lat + `}`, "status_code"},
		{"a score beyond float64", TypeScore, score + `,"value":1e400}`, "/value"},
		{"a negative score beyond float64", TypeScore, score + `,"value":-1e309}`, "/value"},
		{"a token count beyond uint64", TypeLLMCall, call + `,"status_code":200,"usage":{"total_tokens":18446744073709551616},` + lat + `}`, "/usage/total_tokens"},
		{"a cost beyond float64", TypeLLMCall, call + `,"status_code":200,"cost":{"total":2e308},` + lat + `}`, "/cost/total"},
		{"a latency beyond float64", TypeLLMCall, call + `,"status_code":200,"latency":{"total_ms":1e400,"gateway_ms":0,"provider_ms":1}}`, "/latency/total_ms"},
		{"an attempt's latency beyond float64", TypeLLMCall, call + `,"status_code":200,"attempts":[{"provider":"p","model":"m","status":"error","latency_ms":1e309}],` + lat + `}`, "/attempts/0/latency_ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ct, _ := Lookup(c.typ)
			_, problems := ct.Validate([]byte(c.data))
			if _, err := ct.Unmarshal([]byte(c.data)); err == nil {
				t.Fatalf("Unmarshal decodes it; the case is wrong")
			}
			if len(problems) == 0 {
				t.Fatal("Validate accepted data Unmarshal rejects")
			}
			if s := fmt.Sprint(problems); !strings.Contains(s, c.want) {
				t.Fatalf("problems %s do not mention %q", s, c.want)
			}
		})
	}
	// The largest values the Go types hold are still accepted.
	for typ, data := range map[string]string{
		TypeScore:   score + `,"value":-1.7976931348623157e308}`,
		TypeLLMCall: call + `,"status_code":200,"usage":{"total_tokens":18446744073709551615},"cost":{"total":1.7976931348623157e308},` + lat + `}`,
	} {
		ct, _ := Lookup(typ)
		if _, problems := ct.Validate([]byte(data)); len(problems) > 0 {
			t.Errorf("%s: %v", data, problems)
		}
		if _, err := ct.Unmarshal([]byte(data)); err != nil {
			t.Errorf("%s: %v", data, err)
		}
	}
}
