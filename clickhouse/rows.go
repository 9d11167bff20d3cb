package clickhouse

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"
)

// Envelope is what every row carries: its owner, its id, the CloudEvent that wrote it, and the
// version ReplacingMergeTree keeps the newest of.
type Envelope struct {
	TenantID  string
	ProjectID string
	ID        string
	// EventSource and EventID are the CloudEvents source and id of the event that wrote the row.
	EventSource string
	EventID     string
	// Version is the ingestion time in Unix milliseconds; Write fills in the current time when
	// it is 0. Of rows with the same key the one with the highest version survives.
	Version  uint64
	Metadata map[string]string
}

// Trace is one row of the traces table. Its ID is the trace id (the sharding key uses it).
type Trace struct {
	Envelope
	Timestamp   time.Time
	Name        string
	UserID      string
	SessionID   string
	Release     string
	AppVersion  string
	Environment string
	Tags        []string
	Input       string // JSON text
	Output      string // JSON text
}

// Usage is the tokens and cost of a call to a model. Observations and LLM calls both carry
// it, in columns of the same names.
type Usage struct {
	PromptTokens     uint64
	CompletionTokens uint64
	TotalTokens      uint64
	InputCost        float64 // USD
	OutputCost       float64 // USD
	TotalCost        float64 // USD
}

// Observation types and levels.
const (
	TypeSpan       = "SPAN"
	TypeGeneration = "GENERATION"
	TypeEvent      = "EVENT"

	LevelDebug   = "DEBUG"
	LevelDefault = "DEFAULT"
	LevelWarning = "WARNING"
	LevelError   = "ERROR"
)

// Observation is one row of the observations table: a span, an LLM generation or an event.
type Observation struct {
	Envelope
	TraceID             string
	ParentObservationID string
	Type                string // SPAN, GENERATION or EVENT
	Name                string
	StartTime           time.Time
	EndTime             time.Time // zero when unknown
	CompletionStartTime time.Time // zero when unknown
	Model               string
	ModelParameters     string // JSON text
	Input               string // JSON text
	Output              string // JSON text
	Usage
	Level         string // DEBUG, DEFAULT, WARNING or ERROR
	StatusMessage string
}

// Score data types and sources.
const (
	DataTypeNumeric     = "NUMERIC"
	DataTypeCategorical = "CATEGORICAL"
	DataTypeBoolean     = "BOOLEAN"

	SourceAPI        = "API"
	SourceAnnotation = "ANNOTATION"
	SourceEval       = "EVAL"
)

// Score is one row of the scores table.
type Score struct {
	Envelope
	TraceID       string
	ObservationID string
	Name          string
	Value         float64
	StringValue   string
	DataType      string // NUMERIC, CATEGORICAL or BOOLEAN
	Source        string // API, ANNOTATION or EVAL
	Comment       string
	Timestamp     time.Time
}

// Batch is the unit Write stores: rows for each table.
type Batch struct {
	Traces       []Trace
	Observations []Observation
	Scores       []Score
	LLMCalls     []LLMCall
	Findings     []Finding
}

// Len is the number of rows in the batch.
func (b Batch) Len() int {
	return len(b.Traces) + len(b.Observations) + len(b.Scores) + len(b.LLMCalls) + len(b.Findings)
}

// Validate reports every row that cannot be stored, naming it by table and index.
func (b Batch) Validate() error {
	var errs []error
	check := func(table string, i int, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s[%d]: %w", table, i, err))
		}
	}
	for i := range b.Traces {
		t := &b.Traces[i]
		check("traces", i, errors.Join(t.Envelope.validate(), required("timestamp", t.Timestamp)))
	}
	for i := range b.Observations {
		o := &b.Observations[i]
		check("observations", i, errors.Join(o.Envelope.validate(),
			nonEmpty("trace_id", o.TraceID),
			required("start_time", o.StartTime),
			storable("end_time", o.EndTime),
			storable("completion_start_time", o.CompletionStartTime),
			oneOf("type", o.Type, TypeSpan, TypeGeneration, TypeEvent),
			oneOf("level", o.Level, LevelDebug, LevelDefault, LevelWarning, LevelError)))
	}
	for i := range b.Scores {
		s := &b.Scores[i]
		check("scores", i, errors.Join(s.Envelope.validate(),
			nonEmpty("trace_id", s.TraceID),
			nonEmpty("name", s.Name),
			required("timestamp", s.Timestamp),
			oneOf("data_type", s.DataType, DataTypeNumeric, DataTypeCategorical, DataTypeBoolean),
			oneOf("source", s.Source, SourceAPI, SourceAnnotation, SourceEval)))
	}
	for i := range b.LLMCalls {
		check("llm_calls", i, b.LLMCalls[i].validate())
	}
	for i := range b.Findings {
		check("findings", i, b.Findings[i].validate())
	}
	return errors.Join(errs...)
}

func (e *Envelope) validate() error {
	return errors.Join(nonEmpty("tenant_id", e.TenantID), nonEmpty("project_id", e.ProjectID), nonEmpty("id", e.ID))
}

func nonEmpty(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s is required", field)
	}
	return nil
}

func required(field string, t time.Time) error {
	if t.IsZero() {
		return fmt.Errorf("%s is required", field)
	}
	return storable(field, t)
}

// storable accepts the zero time (stored as the epoch, "unknown") and the times every time
// column holds. DateTime, the narrower of the two column types, is an unsigned 32-bit count of
// seconds, and the driver does not check the range: it wraps, so 1969 would be stored as 2106.
// The epoch second itself reads back as unknown, so a time must be after it.
func storable(field string, t time.Time) error {
	if !t.IsZero() && (t.Unix() < 1 || t.Unix() > math.MaxUint32) {
		return fmt.Errorf("%s %s is outside the storable range %s to %s", field, t.UTC().Format(time.RFC3339Nano),
			time.Unix(1, 0).UTC().Format(time.RFC3339), time.Unix(math.MaxUint32, 0).UTC().Format(time.RFC3339))
	}
	return nil
}

func oneOf(field, v string, allowed ...string) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("%s must be one of %v, got %q", field, allowed, v)
	}
	return nil
}

// Column lists and the matching values and scan targets. Each list and its two functions
// below must stay in the same order.
var (
	envelopeColumns    = []string{"tenant_id", "project_id", "id", "event_source", "event_id", "version", "metadata_keys", "metadata_values"}
	traceColumns       = append(slices.Clone(envelopeColumns), "timestamp", "name", "user_id", "session_id", "release", "app_version", "environment", "tags", "input", "output")
	observationColumns = append(slices.Clone(envelopeColumns), "trace_id", "parent_observation_id", "type", "name", "start_time", "end_time", "completion_start_time", "model", "model_parameters", "input", "output", "prompt_tokens", "completion_tokens", "total_tokens", "input_cost", "output_cost", "total_cost", "level", "status_message")
	scoreColumns       = append(slices.Clone(envelopeColumns), "trace_id", "observation_id", "name", "value", "string_value", "data_type", "source", "comment", "timestamp")
)

func (e *Envelope) values(defaultVersion uint64) []any {
	v := e.Version
	if v == 0 {
		v = defaultVersion
	}
	keys := make([]string, 0, len(e.Metadata))
	for k := range e.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = e.Metadata[k]
	}
	return []any{e.TenantID, e.ProjectID, e.ID, e.EventSource, e.EventID, v, keys, vals}
}

func (t *Trace) values(defaultVersion uint64) []any {
	tags := t.Tags
	if tags == nil {
		tags = []string{}
	}
	return append(t.Envelope.values(defaultVersion), dbTime(t.Timestamp), t.Name, t.UserID, t.SessionID,
		t.Release, t.AppVersion, t.Environment, tags, t.Input, t.Output)
}

func (o *Observation) values(defaultVersion uint64) []any {
	return append(o.Envelope.values(defaultVersion), o.TraceID, o.ParentObservationID, o.Type, o.Name,
		dbTime(o.StartTime), dbTime(o.EndTime), dbTime(o.CompletionStartTime), o.Model, o.ModelParameters,
		o.Input, o.Output, o.PromptTokens, o.CompletionTokens, o.TotalTokens,
		o.InputCost, o.OutputCost, o.TotalCost, o.Level, o.StatusMessage)
}

func (s *Score) values(defaultVersion uint64) []any {
	return append(s.Envelope.values(defaultVersion), s.TraceID, s.ObservationID, s.Name, s.Value,
		s.StringValue, s.DataType, s.Source, s.Comment, dbTime(s.Timestamp))
}

// Time columns are not Nullable: an unknown time (zero time.Time) is stored as the Unix epoch,
// which DateTime and DateTime64 both hold, and read back as zero.
func dbTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}
