// Package gensql writes INSERT ... SELECT statements that generate telemetry rows inside
// ClickHouse from numbers(), for tests and benchmarks: millions of rows without sending them,
// and the same rows on every server version (the values come from intHash64 of the row
// number, whose results do not depend on the version).
package gensql

import (
	"fmt"
	"strings"
	"time"
)

// Spec says which rows to generate: N rows numbered from First, ids "<prefix>-<number>",
// times spread over Span from Start in whole seconds, Traces rows per trace id.
type Spec struct {
	Database        string
	Tenant, Project string
	Start           time.Time
	Span            time.Duration
	First, N        uint64
	PerTrace        uint64 // rows per trace id; default 10
	Version         uint64 // default 1
	// Salt changes every generated value but the ids: rows written again with another salt
	// and a higher version are updates (other dimensions, measures and times).
	Salt uint64
}

func (s Spec) withDefaults() Spec {
	if s.PerTrace == 0 {
		s.PerTrace = 10
	}
	if s.Version == 0 {
		s.Version = 1
	}
	if s.Database == "" {
		s.Database = "trustplane"
	}
	return s
}

func quote(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// salt is the Spec's Salt while a statement is being written (statements are built one at a
// time by the functions below, which set it).
type hasher struct{ salt uint64 }

// h is a pseudo-random UInt64 of the row number, one stream per k.
func (x hasher) h(k int) string {
	if x.salt == 0 {
		return fmt.Sprintf("intHash64(number * 16 + %d)", k)
	}
	return fmt.Sprintf("intHash64(number * 16 + %d + %d)", k, x.salt*1000003)
}

func (x hasher) pick(k int, values ...string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = quote(v)
	}
	return fmt.Sprintf("arrayElement([%s], %s %% %d + 1)", strings.Join(q, ", "), x.h(k), len(values))
}

// timeExpr is a row's time: its trace's time (random over Span) plus its place in the trace in
// seconds, so that a trace's rows lie together as real traces' do. per is the rows per trace
// (1 for traces themselves).
func (s Spec) timeExpr(per uint64) string {
	return fmt.Sprintf("toDateTime(toUInt32(%d + intHash64(intDiv(number, %d) * 16 + %d) %% %d + number %% %d), 'UTC')",
		s.Start.Unix(), per, s.Salt*1000003, int64(s.Span/time.Second), per)
}

func (s Spec) numbers() string {
	return fmt.Sprintf("(SELECT number FROM system.numbers WHERE number >= %d LIMIT %d)", s.First, s.N)
}

// LLMCalls is the statement that inserts s.N llm calls.
func LLMCalls(s Spec) string {
	s = s.withDefaults()
	x := hasher{s.Salt}
	h, pick := x.h, x.pick
	return fmt.Sprintf(`INSERT INTO %s.llm_calls (tenant_id, project_id, id, event_source, event_id, version, metadata_keys, metadata_values,
    trace_id, timestamp, endpoint, model_requested, model_served, provider, status, status_code, error, stream, attempts, attempts_json,
    user_id, prompt_tokens, completion_tokens, total_tokens, input_cost, output_cost, total_cost, latency_ms, gateway_ms, provider_ms,
    ttft_ms, capture, input, output)
SELECT %s, %s, concat('call-', toString(number)), '/gensql', toString(number), %d, [], [],
    concat('trace-', toString(intDiv(number, %d))), %s, 'chat.completions', %s, %s, %s, %s, 200, '', toUInt8(%s %% 2), 1, '',
    concat('user-', toString(%s %% 50)), %s %% 4000 AS pt, %s %% 1000 AS ct, pt + ct,
    (%s %% 100000) / 10000000, (%s %% 100000) / 10000000, (%s %% 200000) / 10000000,
    if(%s %% 10 = 0, (%s %% 4000000) / 100, (%s %% 200000) / 100) AS lat, (%s %% 300) / 100, lat * 0.9,
    if(%s %% 2 = 1, (%s %% 80000) / 100, 0), 'none', '', ''
FROM %s`,
		s.Database, quote(s.Tenant), quote(s.Project), s.Version, s.PerTrace, s.timeExpr(s.PerTrace),
		pick(2, "gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama"), pick(3, "gpt-4o", "gpt-4o-mini", "claude-sonnet", "llama"),
		pick(4, "openai", "anthropic", "mock"), pick(5, "success", "success", "success", "error", "rate_limited"), h(6),
		h(7), h(8), h(9), h(10), h(11), h(12), h(13), h(14), h(15), h(16), h(6), h(6), s.numbers())
}

// Observations is the statement that inserts s.N observations; a third have no end time.
func Observations(s Spec) string {
	s = s.withDefaults()
	x := hasher{s.Salt}
	h, pick := x.h, x.pick
	return fmt.Sprintf(`INSERT INTO %s.observations (tenant_id, project_id, id, event_source, event_id, version, metadata_keys, metadata_values,
    trace_id, parent_observation_id, type, name, start_time, end_time, completion_start_time, model, model_parameters, input, output,
    prompt_tokens, completion_tokens, total_tokens, input_cost, output_cost, total_cost, level, status_message)
SELECT %s, %s, concat('obs-', toString(number)), '/gensql', toString(number), %d, ['k'], [toString(number %% 7)],
    concat('trace-', toString(intDiv(number, %d))), '', %s, concat('step-', toString(%s %% 5)), %s AS st,
    if(%s %% 3 = 0, toDateTime(0, 'UTC'), toDateTime(toUInt32(toUInt32(st) + %s %% 40), 'UTC')), toDateTime(0, 'UTC'), %s, '{}', '', '',
    %s %% 100, 0, %s %% 100, 0, 0, (%s %% 100000) / 100000000, %s, ''
FROM %s`,
		s.Database, quote(s.Tenant), quote(s.Project), s.Version, s.PerTrace, pick(1, "SPAN", "GENERATION", "EVENT"), h(2), s.timeExpr(s.PerTrace),
		h(4), h(5), pick(6, "", "gpt-4o", "claude-sonnet"), h(7), h(7), h(8), pick(9, "DEFAULT", "DEFAULT", "WARNING", "ERROR", "DEBUG"), s.numbers())
}

// Traces is the statement that inserts s.N traces, ids trace-<number / PerTrace> as the
// calls' and observations' trace ids (so generate N / PerTrace of them).
func Traces(s Spec) string {
	s = s.withDefaults()
	x := hasher{s.Salt}
	h, pick := x.h, x.pick
	return fmt.Sprintf(`INSERT INTO %s.traces (tenant_id, project_id, id, event_source, event_id, version, metadata_keys, metadata_values,
    timestamp, name, user_id, session_id, release, app_version, environment, tags, input, output)
SELECT %s, %s, concat('trace-', toString(number)), '/gensql', toString(number), %d, [], [],
    %s, %s, concat('user-', toString(%s %% 50)), concat('session-', toString(intDiv(number, 5))), 'r1', '1.0', %s, [%s], '{}', '{}'
FROM %s`,
		s.Database, quote(s.Tenant), quote(s.Project), s.Version, s.timeExpr(1), pick(2, "chat", "search", "agent"), h(3),
		pick(4, "prod", "staging"), pick(5, "a", "b"), s.numbers())
}

// Scores is the statement that inserts s.N numeric scores, PerTrace per trace id.
func Scores(s Spec) string {
	s = s.withDefaults()
	x := hasher{s.Salt}
	h, pick := x.h, x.pick
	return fmt.Sprintf(`INSERT INTO %s.scores (tenant_id, project_id, id, event_source, event_id, version, metadata_keys, metadata_values,
    trace_id, observation_id, name, value, string_value, data_type, source, comment, timestamp)
SELECT %s, %s, concat('score-', toString(number)), '/gensql', toString(number), %d, [], [],
    concat('trace-', toString(intDiv(number, %d))), '', %s, (%s %% 1000) / 10, '', 'NUMERIC', %s, '', %s
FROM %s`,
		s.Database, quote(s.Tenant), quote(s.Project), s.Version, s.PerTrace, pick(1, "quality", "relevance"), h(2),
		pick(3, "API", "EVAL", "ANNOTATION"), s.timeExpr(s.PerTrace), s.numbers())
}

// Findings is the statement that inserts s.N findings on observations obs-<number>, PerTrace
// per trace id.
func Findings(s Spec) string {
	s = s.withDefaults()
	x := hasher{s.Salt}
	h, pick := x.h, x.pick
	return fmt.Sprintf(`INSERT INTO %s.findings (tenant_id, project_id, source_type, source_id, source_event_id, trace_id, timestamp,
    side, detector, category, entity, severity, score, span_start, span_end, preview, fingerprint, action, reasons, truncated,
    event_source, event_id, version)
SELECT %s, %s, 'observation', concat('obs-', toString(number)), toString(number), concat('trace-', toString(intDiv(number, %d))), %s,
    %s, %s, %s, %s, %s, (%s %% 100) / 100, toUInt32(%s %% 1000) AS st, st + 20, '****', '', 'observe', ['pattern'], 0,
    '/gensql', toString(number), %d
FROM %s`,
		s.Database, quote(s.Tenant), quote(s.Project), s.PerTrace, s.timeExpr(s.PerTrace), pick(2, "input", "output"),
		pick(3, "secret.aws_access_key", "pii.email", "injection.prompt"), pick(4, "secret", "pii", "injection"),
		pick(5, "aws_key", "email", ""), pick(6, "high", "medium", "low"), h(7), h(8), s.Version, s.numbers())
}
