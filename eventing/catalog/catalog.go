// Package catalog is trustplane's event catalog: the CloudEvents types functions exchange, the
// JSON Schema each type's data must satisfy, and the Go type it decodes into.
package catalog

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/trustplane/trustplane/internal/jsonscan"
)

// Telemetry event types. The version suffix changes only for incompatible changes to data.
const (
	TypeTrace       = "io.trustplane.telemetry.trace.v1"
	TypeObservation = "io.trustplane.telemetry.observation.v1"
	TypeScore       = "io.trustplane.telemetry.score.v1"

	// TelemetryPrefix is shared by every telemetry type; the persist Trigger filters on it.
	TelemetryPrefix = "io.trustplane.telemetry."
)

// Extension attributes trustplane sets on events. CloudEvents extension names are lower-case
// letters and digits only.
const (
	// ExtPartitionKey carries the trace id, so all events of a trace share a Kafka partition.
	ExtPartitionKey = "partitionkey"
	// ExtTenant and ExtProject come from the API key that posted the event, never from the payload.
	ExtTenant  = "tenantid"
	ExtProject = "projectid"
	// ExtKeyID names the API key that posted the event (its public id, not the secret).
	ExtKeyID = "keyid"
	// ExtIngestTime is when ingest accepted the event. Stores use it as the row version, so
	// that of two events writing the same row the one received last wins, whatever order they
	// are delivered in.
	ExtIngestTime = "ingesttime"
)

// Payload is the decoded data of a telemetry event.
type Payload interface {
	// PartitionKey is the id of the trace the event belongs to: all events of a trace share a
	// Kafka partition and a ClickHouse shard.
	PartitionKey() string
}

// Trace is the data of TypeTrace.
type Trace struct {
	ID          string            `json:"id"`
	Timestamp   time.Time         `json:"timestamp"`
	Name        string            `json:"name,omitempty"`
	UserID      string            `json:"user_id,omitempty"`
	SessionID   string            `json:"session_id,omitempty"`
	Release     string            `json:"release,omitempty"`
	Version     string            `json:"version,omitempty"`
	Environment string            `json:"environment,omitempty"`
	Tags        []string          `json:"tags,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Input       json.RawMessage   `json:"input,omitempty"`
	Output      json.RawMessage   `json:"output,omitempty"`
}

// PartitionKey implements Payload.
func (t *Trace) PartitionKey() string { return t.ID }

// Usage counts the tokens of an LLM generation.
type Usage struct {
	PromptTokens     uint64 `json:"prompt_tokens,omitempty"`
	CompletionTokens uint64 `json:"completion_tokens,omitempty"`
	TotalTokens      uint64 `json:"total_tokens,omitempty"`
}

// Cost is what an LLM generation cost, in USD.
type Cost struct {
	Input  float64 `json:"input,omitempty"`
	Output float64 `json:"output,omitempty"`
	Total  float64 `json:"total,omitempty"`
}

// Observation is the data of TypeObservation.
type Observation struct {
	ID                  string            `json:"id"`
	TraceID             string            `json:"trace_id"`
	ParentObservationID string            `json:"parent_observation_id,omitempty"`
	Type                string            `json:"type"`
	Name                string            `json:"name,omitempty"`
	StartTime           time.Time         `json:"start_time"`
	EndTime             *time.Time        `json:"end_time,omitempty"`
	CompletionStartTime *time.Time        `json:"completion_start_time,omitempty"`
	Model               string            `json:"model,omitempty"`
	ModelParameters     json.RawMessage   `json:"model_parameters,omitempty"`
	Input               json.RawMessage   `json:"input,omitempty"`
	Output              json.RawMessage   `json:"output,omitempty"`
	Usage               Usage             `json:"usage,omitzero"`
	Cost                Cost              `json:"cost,omitzero"`
	Level               string            `json:"level,omitempty"`
	StatusMessage       string            `json:"status_message,omitempty"`
	Metadata            map[string]string `json:"metadata,omitempty"`
}

// PartitionKey implements Payload.
func (o *Observation) PartitionKey() string { return o.TraceID }

// Score is the data of TypeScore.
type Score struct {
	ID            string            `json:"id"`
	TraceID       string            `json:"trace_id"`
	ObservationID string            `json:"observation_id,omitempty"`
	Name          string            `json:"name"`
	Value         float64           `json:"value,omitempty"`
	StringValue   string            `json:"string_value,omitempty"`
	DataType      string            `json:"data_type,omitempty"`
	Source        string            `json:"source,omitempty"`
	Comment       string            `json:"comment,omitempty"`
	Timestamp     time.Time         `json:"timestamp"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

// PartitionKey implements Payload.
func (s *Score) PartitionKey() string { return s.TraceID }

// Type describes one event type of the catalog.
type Type struct {
	Name        string
	Description string
	SchemaFile  string
	schema      *jsonschema.Schema
	newPayload  func() Payload
	// keyFields name the top-level fields whose first non-empty value is the partition key, as
	// the Go type's PartitionKey computes it (a test holds the two together).
	keyFields []string
	// fast is the same schema compiled for Validate's fast path (compiled.go); fastKeys are
	// the indexes of keyFields among its root properties.
	fast     *node
	fastKeys []int
	// decoder is Unmarshal's fast path (decoder.go).
	decoder *decoder
}

//go:embed schemas/*.json
var schemaFiles embed.FS

var types = map[string]*Type{}

func init() {
	register(TypeTrace, "trace.v1.json", func() Payload { return new(Trace) }, "id")
	register(TypeObservation, "observation.v1.json", func() Payload { return new(Observation) }, "trace_id")
	register(TypeScore, "score.v1.json", func() Payload { return new(Score) }, "trace_id")
	register(TypeLLMCall, "llmcall.v1.json", func() Payload { return new(LLMCall) }, "trace_id", "id")
	register(TypeFinding, "finding.v1.json", func() Payload { return new(Findings) }, "trace_id", "source_id")
}

func register(name, file string, newPayload func() Payload, keyFields ...string) {
	raw, err := schemaFiles.ReadFile("schemas/" + file)
	if err != nil {
		panic(err)
	}
	types[name] = newType(name, file, raw, newPayload, keyFields)
}

// newType compiles a schema file for both validation paths. It panics on a schema either
// cannot read, so that a schema edit the fast path does not understand fails every test.
func newType(name, file string, raw []byte, newPayload func() Payload, keyFields []string) *Type {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", file, err))
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.RegisterFormat(&dateTime)
	if err := c.AddResource(file, doc); err != nil {
		panic(fmt.Sprintf("schema %s: %v", file, err))
	}
	sch, err := c.Compile(file)
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", file, err))
	}
	fast, err := compileSchema(raw)
	if err != nil {
		panic(fmt.Sprintf("schema %s: %v", file, err))
	}
	var fastKeys []int
	for _, f := range keyFields {
		i := fast.find([]byte(f))
		if i < 0 {
			panic(fmt.Sprintf("schema %s: partition key field %s is not a property", file, f))
		}
		fastKeys = append(fastKeys, i)
	}
	desc, _ := doc.(map[string]any)["description"].(string)
	return &Type{Name: name, Description: desc, SchemaFile: "schemas/" + file, schema: sch, newPayload: newPayload,
		keyFields: keyFields, fast: fast, fastKeys: fastKeys, decoder: newDecoder(reflect.TypeOf(newPayload()).Elem())}
}

// Lookup returns the catalog entry for an event type.
func Lookup(name string) (*Type, bool) {
	t, ok := types[name]
	return t, ok
}

// Types lists the catalog, sorted by name.
func Types() []*Type {
	out := make([]*Type, 0, len(types))
	for _, t := range types {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Schema returns the JSON Schema document of the type.
func (t *Type) Schema() []byte {
	raw, _ := schemaFiles.ReadFile(t.SchemaFile)
	return raw
}

// Problem is one reason an event's data is invalid.
type Problem struct {
	// Pointer is the JSON pointer of the offending value inside data ("" for the whole document).
	Pointer string `json:"pointer"`
	Detail  string `json:"detail"`
}

func (p Problem) String() string {
	if p.Pointer == "" {
		return p.Detail
	}
	return p.Pointer + ": " + p.Detail
}

// dateTime replaces the schema's date-time format with the one Go's time package reads, so that
// data the schema accepts always decodes into the Go types (RFC 3339 allows a leap second, for
// example, which time.Time cannot hold).
var dateTime = jsonschema.Format{Name: "date-time", Validate: func(v any) error {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	return goDateTime(s)
}}

// goDateTime is the date-time format of both validation paths. Besides RFC 3339 it bounds the
// time to what every ClickHouse time column stores: DateTime counts seconds since the epoch in
// an unsigned 32-bit number (the epoch second itself reads back as "unknown"), and the store
// refuses anything else. Refused here, such an event gets its 4xx at the edge instead of being
// accepted and then dead-lettered.
func goDateTime(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("not an RFC 3339 date-time: %v", err)
	}
	if u := t.Unix(); u < 1 || u > math.MaxUint32 {
		return fmt.Errorf("date-time outside %s to %s", time.Unix(1, 0).UTC().Format(time.RFC3339), time.Unix(math.MaxUint32, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

// Validate checks data against the type's schema, the contract applications read, and returns
// its partition key (the trace id), or the list of problems. It is what the edge (ingest) runs
// on every event; it does not build the Go value.
//
// Valid data is accepted by the compiled fast path; only what it cannot prove valid goes
// through the jsonschema validator, which names the problems.
func (t *Type) Validate(data []byte) (partitionKey string, problems []Problem) {
	if key, ok := t.fast.accept(data, t.fastKeys); ok {
		return key, nil
	}
	if p, found := hugeNumber(data); found {
		return "", []Problem{p}
	}
	key, problems := t.validateSlow(data)
	if len(problems) > 0 {
		return "", problems
	}
	// The schema cannot say everything the Go type needs (an integer written 1.0 or -0, a
	// date-time written with escapes, which time.Time's JSON decoding does not resolve):
	// stores decode data with Unmarshal, so what it rejects is a problem here, not a dead
	// letter later.
	if _, err := t.Unmarshal(data); err != nil {
		return "", []Problem{{Detail: err.Error()}}
	}
	return key, nil
}

// validateSlow is Validate by the jsonschema validator alone.
func (t *Type) validateSlow(data []byte) (partitionKey string, problems []Problem) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return "", []Problem{{Detail: "data is not valid JSON: " + err.Error()}}
	}
	if err := t.schema.Validate(doc); err != nil {
		return "", problemsOf(err)
	}
	obj, _ := doc.(map[string]any) // the schemas only accept objects
	for _, f := range t.keyFields {
		if k, _ := obj[f].(string); k != "" {
			return k, nil
		}
	}
	return "", []Problem{{Detail: "data names no trace"}}
}

// maxDecimalExponent bounds the exponent of any number in data. The jsonschema validator's
// exact arithmetic (big.Rat) panics on exponents beyond an int and takes tens of milliseconds
// on ones in the millions; no such number fits the float64 fields of the catalog's types, and
// none is a plausible value anywhere in telemetry.
const maxDecimalExponent = 10000

// maxNumberLength bounds the length of any number in data, for the same validator: it reads
// the digits in time quadratic in their count (half a second for a 250 KB number, which one
// event may hold). float64 and uint64 need far fewer digits.
const maxNumberLength = 1000

// hugeNumber finds the first number whose exponent is beyond maxDecimalExponent or that is
// longer than maxNumberLength. Data that is not JSON is left to the validator to describe.
func hugeNumber(data []byte) (Problem, bool) {
	s := jsonscan.New(data)
	var path []string
	var detail string
	var walk func() bool // false when a huge number was found or the data is not JSON
	walk = func() bool {
		switch s.Peek() {
		case jsonscan.Number:
			num := s.Number()
			if len(num) > maxNumberLength {
				detail = fmt.Sprintf("number out of range: it is longer than %d characters", maxNumberLength)
				return false
			}
			if i := bytes.IndexAny(num, "eE"); i >= 0 {
				exp := strings.TrimLeft(string(num[i+1:]), "+-")
				if e, err := strconv.Atoi(exp); err != nil || e > maxDecimalExponent {
					detail = fmt.Sprintf("number out of range: its exponent is beyond ±%d", maxDecimalExponent)
					return false
				}
			}
			return true
		case jsonscan.Object:
			s.BeginObject()
			for {
				key, plain, ok := s.Member()
				if !ok {
					return s.Err() == nil
				}
				if !plain {
					key = jsonscan.AppendUnquote(nil, key)
				}
				path = append(path, string(key))
				if !walk() {
					return false
				}
				path = path[:len(path)-1]
			}
		case jsonscan.Array:
			s.BeginArray()
			for i := 0; s.Element(); i++ {
				path = append(path, strconv.Itoa(i))
				if !walk() {
					return false
				}
				path = path[:len(path)-1]
			}
			return s.Err() == nil
		default:
			return s.Skip() != nil
		}
	}
	if walk() || s.Err() != nil {
		return Problem{}, false
	}
	return Problem{Pointer: pointer(path), Detail: detail}, true
}

// Decode validates data against the type's schema and decodes it. It returns either the
// payload or the list of problems, never both.
func (t *Type) Decode(data []byte) (Payload, []Problem) {
	if _, problems := t.Validate(data); len(problems) > 0 {
		return nil, problems
	}
	p := t.newPayload()
	if err := json.Unmarshal(data, p); err != nil {
		// The schema accepted it, so this is a value JSON Schema cannot express (e.g. a
		// timestamp out of Go's range).
		return nil, []Problem{{Detail: err.Error()}}
	}
	return p, nil
}

// Unmarshal decodes data that already passed Decode at the edge (ingest) into the Go type,
// strictly: unknown fields, wrong JSON types and trailing data are errors. It skips the schema
// check, which costs more than the decoding itself, so stores downstream of ingest use it and
// check what they need of the values themselves.
func (t *Type) Unmarshal(data []byte) (Payload, error) {
	if t.decoder != nil {
		if p := t.newPayload(); t.decoder.decode(data, reflect.ValueOf(p).Elem()) {
			return p, nil
		}
	}
	return t.unmarshalJSON(data)
}

// unmarshalJSON is Unmarshal by encoding/json, for what the fast decoder gives up on.
func (t *Type) unmarshalJSON(data []byte) (Payload, error) {
	p := t.newPayload()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		return nil, fmt.Errorf("data of %s is not the expected JSON: %w", t.Name, err)
	}
	// Not dec.More(), which is false before a stray ']' or '}'.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("data of %s: trailing data after the JSON object", t.Name)
	}
	return p, nil
}

func problemsOf(err error) []Problem {
	verr, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return []Problem{{Detail: err.Error()}}
	}
	var out []Problem
	var walk func(*jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, Problem{Pointer: pointer(e.InstanceLocation), Detail: e.ErrorKind.LocalizedString(englishPrinter)})
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(verr)
	return out
}

var englishPrinter = message.NewPrinter(language.English)

func pointer(tokens []string) string {
	var b strings.Builder
	for _, tok := range tokens {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(tok))
	}
	return b.String()
}
