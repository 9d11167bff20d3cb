package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/eventing/pricing"
	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// sourceOTLP is the CloudEvents source of every event mapped from OTLP.
const sourceOTLP = "/trustplane/ingest/otlp"

// Observation types of the catalog.
const (
	obsSpan       = "SPAN"
	obsGeneration = "GENERATION"
)

// Mapper turns OTLP spans into the catalog's events: an observation per span (a generation
// when the span carries GenAI attributes) and a trace per trace whose root span is in the
// export. The README's mapping table says which attribute goes where.
type Mapper struct {
	Prices        pricing.Table
	MaxEventBytes int64
	// validateAll sends every mapped event through the catalog's validator, as a posted
	// event is, even those provenValid proves valid; the tests compare the two ways.
	validateAll bool
}

// Mapped is what Map made of an export.
type Mapped struct {
	// Events are validated against the catalog and stamped with the principal's identity.
	Events []cloudevents.Event
	// Spans counts the spans behind Events; Rejected the spans refused, Message says why
	// (the first few reasons).
	Spans, Rejected int
	Message         string
}

type mappedTrace struct {
	id     pcommon.TraceID
	events []cloudevents.Event
	spans  int
	root   *catalog.Trace // from the trace's root span, when the export holds it
	// rootStart orders root candidates: the earliest wins.
	rootStart time.Time
}

// Map maps every span of td. The events' ids derive from the trace and span ids, so a re-sent
// export writes the same rows again instead of new ones.
func (m *Mapper) Map(td ptrace.Traces, p authclient.Principal) Mapped {
	var out Mapped
	var reasons []string
	reject := func(n int, reason string) {
		out.Rejected += n
		if len(reasons) < 3 {
			reasons = append(reasons, reason)
		}
	}
	traces := map[pcommon.TraceID]*mappedTrace{}
	var order []*mappedTrace
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		res := rs.Resource().Attributes()
		service := str(res, "service.name")
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			ss := sss.At(j)
			scope := ss.Scope()
			spans := ss.Spans()
			for k := 0; k < spans.Len(); k++ {
				span := spans.At(k)
				where := spanName{span}
				if span.TraceID().IsEmpty() {
					reject(1, where.String()+": the trace id is empty")
					continue
				}
				if span.SpanID().IsEmpty() {
					reject(1, where.String()+": the span id is empty")
					continue
				}
				obs, err := m.observation(span, scope, service)
				if err != nil {
					reject(1, where.String()+": "+err.Error())
					continue
				}
				e, problems := m.event(catalog.TypeObservation, "otlp-span-"+obs.TraceID+"-"+obs.ID, obs, p)
				if len(problems) > 0 {
					reject(1, where.String()+": "+summarize(problems))
					continue
				}
				t := traces[span.TraceID()]
				if t == nil {
					t = &mappedTrace{id: span.TraceID()}
					traces[span.TraceID()] = t
					order = append(order, t)
				}
				t.events = append(t.events, e)
				t.spans++
				if isRoot(span) && (t.root == nil || obs.StartTime.Before(t.rootStart)) {
					t.root, t.rootStart = traceOf(span, obs, res, scope), obs.StartTime
				}
			}
		}
	}
	for _, t := range order {
		if t.root != nil {
			e, problems := m.event(catalog.TypeTrace, "otlp-trace-"+t.root.ID, t.root, p)
			if len(problems) > 0 {
				// The trace's spans go with it: stored without their trace, they would be
				// half of what the export said.
				reject(t.spans, fmt.Sprintf("trace %s (from its root span and resource): %s", t.id, summarize(problems)))
				continue
			}
			out.Events = append(out.Events, e)
		}
		out.Events = append(out.Events, t.events...)
		out.Spans += t.spans
	}
	if out.Rejected > 0 {
		out.Message = strings.Join(reasons, "; ")
		if n := out.Rejected - len(reasons); n > 0 {
			out.Message += fmt.Sprintf(" (and %d more rejected spans)", n)
		}
	}
	return out
}

// spanName names a span in a rejection, formatted only when one is written.
type spanName struct{ span ptrace.Span }

func (n spanName) String() string {
	return fmt.Sprintf("span %.64q (span id %s, trace id %s)", n.span.Name(), n.span.SpanID(), n.span.TraceID())
}

// event is a catalog event of typ holding payload, validated and stamped as every posted
// event is. A payload provenValid proves valid skips the validator, which would accept it:
// anything else (a name too long, too many attributes, a time out of range) gets the
// validator's answer.
func (m *Mapper) event(typ, id string, payload catalog.Payload, p authclient.Principal) (cloudevents.Event, []catalog.Problem) {
	data, err := json.Marshal(payload)
	if err != nil {
		return cloudevents.Event{}, []catalog.Problem{{Detail: "cannot be encoded: " + err.Error()}}
	}
	if m.MaxEventBytes > 0 && int64(len(data)) > m.MaxEventBytes {
		return cloudevents.Event{}, []catalog.Problem{{Detail: fmt.Sprintf("its %s event is %d bytes, the limit is %d", typ, len(data), m.MaxEventBytes)}}
	}
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource(sourceOTLP)
	e.SetType(typ)
	e.SetDataContentType(contentTypeJSON)
	e.DataEncoded = data
	if !m.validateAll && provenValid(payload) {
		catalog.Stamp(&e, catalog.Origin{Tenant: p.Tenant, Project: p.Project, KeyID: p.KeyID}, payload.PartitionKey())
		return e, nil
	}
	return e, prepare(&e, p)
}

// isRoot: a span without a parent, or whose parent is remote (in another service), is where
// the trace starts as far as this application knows.
func isRoot(span ptrace.Span) bool {
	const hasIsRemote, isRemote = 0x100, 0x200 // OTLP's SpanFlags
	return span.ParentSpanID().IsEmpty() || (span.Flags()&hasIsRemote != 0 && span.Flags()&isRemote != 0)
}

func traceOf(span ptrace.Span, obs *catalog.Observation, res pcommon.Map, scope pcommon.InstrumentationScope) *catalog.Trace {
	attrs := span.Attributes()
	t := &catalog.Trace{
		ID: obs.TraceID, Timestamp: obs.StartTime, Name: span.Name(),
		UserID:      first(attrs, "user.id", "enduser.id", "langfuse.user.id"),
		SessionID:   first(attrs, "session.id", "gen_ai.conversation.id", "langfuse.session.id"),
		Environment: first(res, "deployment.environment.name", "deployment.environment"),
		Version:     str(res, "service.version"),
	}
	if obs.Type == obsSpan {
		t.Input, t.Output = obs.Input, obs.Output
	}
	md := map[string]string{}
	res.Range(func(k string, v pcommon.Value) bool {
		md["resource."+k] = v.AsString()
		return true
	})
	if scope.Name() != "" {
		md["otel.scope.name"] = scope.Name()
	}
	if scope.Version() != "" {
		md["otel.scope.version"] = scope.Version()
	}
	if len(md) > 0 {
		t.Metadata = md
	}
	return t
}

func str(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

func first(m pcommon.Map, keys ...string) string {
	for _, k := range keys {
		if s := str(m, k); s != "" {
			return s
		}
	}
	return ""
}

// generationOperations are the operations (GenAI's gen_ai.operation.name, OpenLLMetry's
// llm.request.type, OpenInference's span kind) whose spans are LLM generations. Agent and tool
// spans carry a model too, but their tokens are their generations'.
var generationOperations = map[string]bool{
	"chat": true, "text_completion": true, "generate_content": true, "embeddings": true,
	"completion": true, "embedding": true, "rerank": true, "llm": true,
}

var spanOperations = map[string]bool{"execute_tool": true, "invoke_agent": true, "create_agent": true}

// modelParameters are the request attributes (gen_ai.request.<name>) that become model_parameters.
var modelParameters = []string{"temperature", "top_p", "top_k", "max_tokens", "frequency_penalty",
	"presence_penalty", "stop_sequences", "seed", "choice.count", "encoding_formats"}

// observation maps one span; the attributes it maps to a field are kept out of metadata.
func (m *Mapper) observation(span ptrace.Span, scope pcommon.InstrumentationScope, service string) (*catalog.Observation, error) {
	if span.StartTimestamp() == 0 {
		return nil, fmt.Errorf("the span has no start time")
	}
	o := &catalog.Observation{
		ID: span.SpanID().String(), TraceID: span.TraceID().String(), Type: obsSpan,
		Name: span.Name(), StartTime: span.StartTimestamp().AsTime().UTC(), Level: "DEFAULT",
	}
	if p := span.ParentSpanID(); !p.IsEmpty() {
		o.ParentObservationID = p.String()
	}
	if end := span.EndTimestamp(); end != 0 {
		if end < span.StartTimestamp() {
			return nil, fmt.Errorf("the span ends before it starts")
		}
		t := end.AsTime().UTC()
		o.EndTime = &t
	}
	if span.Status().Code() == ptrace.StatusCodeError {
		o.Level = "ERROR"
		o.StatusMessage = span.Status().Message()
	}
	attrs := span.Attributes()
	used := map[string]bool{}
	get := func(keys ...string) (pcommon.Value, bool) {
		for _, k := range keys {
			if v, ok := attrs.Get(k); ok && !(v.Type() == pcommon.ValueTypeStr && v.Str() == "") {
				used[k] = true
				return v, true
			}
		}
		return pcommon.Value{}, false
	}
	getStr := func(keys ...string) string {
		if v, ok := get(keys...); ok {
			return v.AsString()
		}
		return ""
	}

	// What the span received and answered, for any span; a generation's messages replace it.
	if v, ok := get("input.value", "traceloop.entity.input"); ok {
		o.Input = valueJSON(v)
	}
	if v, ok := get("output.value", "traceloop.entity.output"); ok {
		o.Output = valueJSON(v)
	}

	provider := getStr("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
	operation := strings.ToLower(getStr("gen_ai.operation.name", "llm.request.type"))
	kind := strings.ToLower(str(attrs, "openinference.span.kind"))
	if operation == "" {
		operation = kind
	}
	requestModel := getStr("gen_ai.request.model", "llm.request.model")
	responseModel := getStr("gen_ai.response.model", "llm.response.model", "llm.model_name")
	model := responseModel
	if model == "" {
		model = requestModel
	}
	generation := !spanOperations[operation] && (generationOperations[operation] || (model != "" && operation == ""))
	if !generation {
		// Only a generation's GenAI attributes are fields: an agent's or tool's stay in metadata.
		for k := range used {
			if k != "input.value" && k != "traceloop.entity.input" && k != "output.value" && k != "traceloop.entity.output" {
				delete(used, k)
			}
		}
	} else {
		o.Type = obsGeneration
		o.Model = model
		if requestModel != "" && requestModel != model {
			used["gen_ai.request.model"] = false // kept in metadata: the model asked for
		}
		var err error
		if o.Usage, err = usage(get); err != nil {
			return nil, err
		}
		o.Cost = m.Prices.Cost(o.Usage.PromptTokens, o.Usage.CompletionTokens, responseModel, requestModel)
		o.ModelParameters = parameters(attrs, used)
		if in := inputMessages(span, attrs, used); in != nil {
			o.Input = in
		}
		if out := outputMessages(span, attrs, used); out != nil {
			o.Output = out
		}
	}

	md := map[string]string{}
	attrs.Range(func(k string, v pcommon.Value) bool {
		if !used[k] {
			md[k] = v.AsString()
		}
		return true
	})
	if generation {
		if provider != "" {
			md["gen_ai.provider.name"] = provider
		}
		if operation != "" {
			md["gen_ai.operation.name"] = operation
		}
		delete(md, "gen_ai.system")
		delete(md, "llm.request.type")
	}
	if service != "" {
		md["service.name"] = service
	}
	if scope.Name() != "" {
		md["otel.scope.name"] = scope.Name()
	}
	if scope.Version() != "" {
		md["otel.scope.version"] = scope.Version()
	}
	if span.Kind() != ptrace.SpanKindUnspecified {
		md["otel.span.kind"] = strings.ToLower(span.Kind().String())
	}
	o.Metadata = md
	return o, nil
}

// usage reads token counts: GenAI's gen_ai.usage.*, their older names (OpenLLMetry's), and
// OpenInference's llm.token_count.*.
func usage(get func(...string) (pcommon.Value, bool)) (catalog.Usage, error) {
	var u catalog.Usage
	var err error
	read := func(dst *uint64, keys ...string) {
		v, ok := get(keys...)
		if !ok || err != nil {
			return
		}
		n, ok := count(v)
		if !ok {
			err = fmt.Errorf("attribute %s must be a token count (a non-negative integer), got %.64q", keys[0], v.AsString())
			return
		}
		*dst = n
	}
	read(&u.PromptTokens, "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens")
	read(&u.CompletionTokens, "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion", "llm.usage.completion_tokens")
	read(&u.TotalTokens, "llm.usage.total_tokens", "gen_ai.usage.total_tokens", "llm.token_count.total")
	if u.TotalTokens == 0 {
		u.TotalTokens = u.PromptTokens + u.CompletionTokens
	}
	return u, err
}

// maxTokenCount is the catalog's bound on a count.
const maxTokenCount = 1_000_000_000_000

func count(v pcommon.Value) (uint64, bool) {
	switch v.Type() {
	case pcommon.ValueTypeInt:
		if n := v.Int(); n >= 0 && n <= maxTokenCount {
			return uint64(n), true
		}
	case pcommon.ValueTypeDouble:
		if f := v.Double(); f >= 0 && f <= maxTokenCount && f == math.Trunc(f) {
			return uint64(f), true
		}
	case pcommon.ValueTypeStr:
		if n, err := strconv.ParseUint(strings.TrimSpace(v.Str()), 10, 64); err == nil && n <= maxTokenCount {
			return n, true
		}
	}
	return 0, false
}

func parameters(attrs pcommon.Map, used map[string]bool) json.RawMessage {
	params := map[string]any{}
	if v, ok := attrs.Get("llm.invocation_parameters"); ok {
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(v.AsString()), &obj) == nil {
			for k, x := range obj {
				params[k] = x
			}
			used["llm.invocation_parameters"] = true
		}
	}
	// The convention's attributes win over the same names in llm.invocation_parameters.
	for _, name := range modelParameters {
		if v, ok := attrs.Get("gen_ai.request." + name); ok {
			params[name] = rawValue(v)
			used["gen_ai.request."+name] = true
		}
	}
	if len(params) == 0 {
		return nil
	}
	b, err := json.Marshal(params)
	if err != nil {
		return nil
	}
	return b
}

// inputMessages are a generation's input, from the first source that has them: GenAI's
// gen_ai.input.messages (and gen_ai.system_instructions) attributes, the same on a
// gen_ai.client.inference.operation.details event, the older per-message events
// (gen_ai.system.message, gen_ai.user.message, ...), OpenLLMetry's gen_ai.prompt.N.*,
// OpenInference's llm.input_messages.N.message.*.
func inputMessages(span ptrace.Span, attrs pcommon.Map, used map[string]bool) json.RawMessage {
	if v, ok := attrs.Get("gen_ai.input.messages"); ok {
		used["gen_ai.input.messages"] = true
		msgs := valueJSON(v)
		if si, ok := attrs.Get("gen_ai.system_instructions"); ok {
			used["gen_ai.system_instructions"] = true
			return withSystem(msgs, valueJSON(si))
		}
		return msgs
	}
	if e, ok := detailsEvent(span); ok {
		if v, ok := e.Get("gen_ai.input.messages"); ok {
			msgs := valueJSON(v)
			if si, ok := e.Get("gen_ai.system_instructions"); ok {
				return withSystem(msgs, valueJSON(si))
			}
			return msgs
		}
	}
	var msgs []json.RawMessage
	events := span.Events()
	for i := 0; i < events.Len(); i++ {
		e := events.At(i)
		role, ok := strings.CutPrefix(e.Name(), "gen_ai.")
		if !ok {
			continue
		}
		if role, ok = strings.CutSuffix(role, ".message"); !ok {
			continue
		}
		msgs = append(msgs, eventMessage(e.Attributes(), role))
	}
	if len(msgs) > 0 {
		return mustJSON(msgs)
	}
	if m := indexed(attrs, "gen_ai.prompt.", "", used); m != nil {
		return m
	}
	return indexed(attrs, "llm.input_messages.", "message.", used)
}

// outputMessages are a generation's output, from the same kinds of sources as its input
// (gen_ai.output.messages, gen_ai.choice events, gen_ai.completion.N.*, llm.output_messages.N.*).
func outputMessages(span ptrace.Span, attrs pcommon.Map, used map[string]bool) json.RawMessage {
	if v, ok := attrs.Get("gen_ai.output.messages"); ok {
		used["gen_ai.output.messages"] = true
		return valueJSON(v)
	}
	if e, ok := detailsEvent(span); ok {
		if v, ok := e.Get("gen_ai.output.messages"); ok {
			return valueJSON(v)
		}
	}
	var msgs []json.RawMessage
	events := span.Events()
	for i := 0; i < events.Len(); i++ {
		if e := events.At(i); e.Name() == "gen_ai.choice" {
			msgs = append(msgs, eventMessage(e.Attributes(), ""))
		}
	}
	if len(msgs) > 0 {
		return mustJSON(msgs)
	}
	if m := indexed(attrs, "gen_ai.completion.", "", used); m != nil {
		return m
	}
	return indexed(attrs, "llm.output_messages.", "message.", used)
}

func detailsEvent(span ptrace.Span) (pcommon.Map, bool) {
	events := span.Events()
	for i := 0; i < events.Len(); i++ {
		if e := events.At(i); e.Name() == "gen_ai.client.inference.operation.details" {
			return e.Attributes(), true
		}
	}
	return pcommon.Map{}, false
}

// withSystem puts the system instructions before the messages, as a system message.
func withSystem(msgs, system json.RawMessage) json.RawMessage {
	var list []json.RawMessage
	if json.Unmarshal(msgs, &list) != nil {
		return mustJSON(map[string]json.RawMessage{"system_instructions": system, "messages": msgs})
	}
	return mustJSON(append([]json.RawMessage{mustJSON(map[string]json.RawMessage{"role": json.RawMessage(`"system"`), "parts": system})}, list...))
}

// eventMessage is a message event's attributes as one JSON object; role is the event's, when
// the attributes do not name one.
func eventMessage(attrs pcommon.Map, role string) json.RawMessage {
	obj := map[string]json.RawMessage{}
	attrs.Range(func(k string, v pcommon.Value) bool {
		obj[strings.TrimPrefix(k, "gen_ai.")] = valueJSON(v)
		return true
	})
	if _, ok := obj["role"]; !ok && role != "" && role != "choice" {
		obj["role"] = mustJSON(role)
	}
	return mustJSON(obj)
}

// indexed gathers flattened messages (prefix + N + "." + [strip] + field) into a list of
// objects, ordered by N; their attributes are marked used.
func indexed(attrs pcommon.Map, prefix, strip string, used map[string]bool) json.RawMessage {
	byIndex := map[int]map[string]json.RawMessage{}
	attrs.Range(func(k string, v pcommon.Value) bool {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			return true
		}
		num, field, ok := strings.Cut(rest, ".")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 0 || field == "" {
			return true
		}
		field = strings.TrimPrefix(field, strip)
		if byIndex[n] == nil {
			byIndex[n] = map[string]json.RawMessage{}
		}
		byIndex[n][field] = valueJSON(v)
		used[k] = true
		return true
	})
	if len(byIndex) == 0 {
		return nil
	}
	idx := make([]int, 0, len(byIndex))
	for n := range byIndex {
		idx = append(idx, n)
	}
	sort.Ints(idx)
	list := make([]map[string]json.RawMessage, len(idx))
	for i, n := range idx {
		list[i] = byIndex[n]
	}
	return mustJSON(list)
}

// valueJSON is an attribute value as JSON: a string holding a JSON object or array is that
// JSON (instrumentations send structured values as JSON strings), any other value its JSON.
func valueJSON(v pcommon.Value) json.RawMessage {
	if v.Type() == pcommon.ValueTypeStr {
		s := bytes.TrimSpace([]byte(v.Str()))
		if len(s) > 0 && (s[0] == '{' || s[0] == '[') && json.Valid(s) {
			return s
		}
	}
	return mustJSON(rawValue(v))
}

// rawValue is v as a Go value encoding/json encodes; a number JSON cannot hold (NaN, ±Inf)
// becomes its string.
func rawValue(v pcommon.Value) any {
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		if f := v.Double(); math.IsNaN(f) || math.IsInf(f, 0) {
			return v.AsString()
		}
	case pcommon.ValueTypeMap, pcommon.ValueTypeSlice:
		// Nested values may hold NaN too: their string form is JSON either way.
		if json.Valid([]byte(v.AsString())) {
			return json.RawMessage(v.AsString())
		}
		return v.AsString()
	case pcommon.ValueTypeEmpty:
		return nil
	}
	return v.AsRaw()
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(fmt.Sprint(v))
	}
	return b
}
