// Package readback reads back, for tests, the rows a clickhouse.Store wrote: duplicates
// collapsed (FINAL), every column in the Go types the Store writes. The functions that serve
// queries own readers of their own, shaped for their queries.
package readback

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
)

// CountRows counts a tenant's rows in table after collapsing duplicates (FINAL). Only the
// table constants are accepted, so no caller input ever becomes SQL.
func CountRows(ctx context.Context, s *clickhouse.Store, table clickhouse.Table, tenant string) (uint64, error) {
	if table.Columns() == nil {
		return 0, fmt.Errorf("readback: unknown table %q", string(table))
	}
	var n uint64
	q := fmt.Sprintf("SELECT count() FROM %s.%s FINAL WHERE tenant_id = ?", database(s), table)
	if err := s.Conn().QueryRow(ctx, q, tenant).Scan(&n); err != nil {
		return 0, fmt.Errorf("readback: count %s: %w", table, err)
	}
	return n, nil
}

// Traces returns a project's traces, duplicates collapsed, ordered by time then id.
func Traces(ctx context.Context, s *clickhouse.Store, tenant, project string) ([]clickhouse.Trace, error) {
	return selectRows(ctx, s, clickhouse.TableTraces, "timestamp", tenant, project,
		func(t *clickhouse.Trace, env *scanEnvelope) []any {
			return append(envelopeTargets(&t.Envelope, env), &t.Timestamp, &t.Name, &t.UserID, &t.SessionID,
				&t.Release, &t.AppVersion, &t.Environment, &t.Tags, &t.Input, &t.Output)
		},
		func(t *clickhouse.Trace, env *scanEnvelope) {
			env.finish(&t.Envelope)
			t.Timestamp = goTime(t.Timestamp)
			if len(t.Tags) == 0 {
				t.Tags = nil
			}
		})
}

// Observations returns a project's observations, duplicates collapsed, ordered by start time
// then id.
func Observations(ctx context.Context, s *clickhouse.Store, tenant, project string) ([]clickhouse.Observation, error) {
	return selectRows(ctx, s, clickhouse.TableObservations, "start_time", tenant, project,
		func(o *clickhouse.Observation, env *scanEnvelope) []any {
			return append(envelopeTargets(&o.Envelope, env), &o.TraceID, &o.ParentObservationID, &o.Type, &o.Name,
				&o.StartTime, &o.EndTime, &o.CompletionStartTime, &o.Model, &o.ModelParameters,
				&o.Input, &o.Output, &o.PromptTokens, &o.CompletionTokens, &o.TotalTokens,
				&o.InputCost, &o.OutputCost, &o.TotalCost, &o.Level, &o.StatusMessage)
		},
		func(o *clickhouse.Observation, env *scanEnvelope) {
			env.finish(&o.Envelope)
			o.StartTime = goTime(o.StartTime)
			o.EndTime = goTime(o.EndTime)
			o.CompletionStartTime = goTime(o.CompletionStartTime)
		})
}

// Scores returns a project's scores, duplicates collapsed, ordered by time then id.
func Scores(ctx context.Context, s *clickhouse.Store, tenant, project string) ([]clickhouse.Score, error) {
	return selectRows(ctx, s, clickhouse.TableScores, "timestamp", tenant, project,
		func(sc *clickhouse.Score, env *scanEnvelope) []any {
			return append(envelopeTargets(&sc.Envelope, env), &sc.TraceID, &sc.ObservationID, &sc.Name, &sc.Value,
				&sc.StringValue, &sc.DataType, &sc.Source, &sc.Comment, &sc.Timestamp)
		},
		func(sc *clickhouse.Score, env *scanEnvelope) {
			env.finish(&sc.Envelope)
			sc.Timestamp = goTime(sc.Timestamp)
		})
}

// LLMCalls returns a project's LLM calls, duplicates collapsed, ordered by time then id.
func LLMCalls(ctx context.Context, s *clickhouse.Store, tenant, project string) ([]clickhouse.LLMCall, error) {
	var stream uint8
	return selectRows(ctx, s, clickhouse.TableLLMCalls, "timestamp", tenant, project,
		func(c *clickhouse.LLMCall, env *scanEnvelope) []any {
			return append(envelopeTargets(&c.Envelope, env), &c.TraceID, &c.Timestamp, &c.Endpoint, &c.ModelRequested, &c.ModelServed,
				&c.Provider, &c.Status, &c.StatusCode, &c.Error, &stream, &c.Attempts, &c.AttemptsJSON, &c.UserID,
				&c.PromptTokens, &c.CompletionTokens, &c.TotalTokens, &c.InputCost, &c.OutputCost, &c.TotalCost,
				&c.LatencyMs, &c.GatewayMs, &c.ProviderMs, &c.TTFTMs, &c.Capture, &c.Input, &c.Output)
		},
		func(c *clickhouse.LLMCall, env *scanEnvelope) {
			env.finish(&c.Envelope)
			c.Timestamp = goTime(c.Timestamp)
			c.Stream = stream == 1
		})
}

func database(s *clickhouse.Store) string { return s.MigrateOptions().Database }

func selectRows[T any](ctx context.Context, s *clickhouse.Store, table clickhouse.Table, timeColumn, tenant, project string,
	targets func(*T, *scanEnvelope) []any, finish func(*T, *scanEnvelope)) ([]T, error) {
	q := fmt.Sprintf("SELECT %s FROM %s.%s FINAL WHERE tenant_id = ? AND project_id = ? ORDER BY %s, id",
		strings.Join(table.Columns(), ", "), database(s), table, timeColumn)
	rows, err := s.Conn().Query(ctx, q, tenant, project)
	if err != nil {
		return nil, fmt.Errorf("readback: select %s: %w", table, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var row T
		var env scanEnvelope
		if err := rows.Scan(targets(&row, &env)...); err != nil {
			return nil, fmt.Errorf("readback: scan %s: %w", table, err)
		}
		finish(&row, &env)
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("readback: select %s: %w", table, err)
	}
	return out, nil
}

// scanEnvelope holds the metadata arrays while a row is scanned.
type scanEnvelope struct {
	keys, vals []string
}

func envelopeTargets(e *clickhouse.Envelope, s *scanEnvelope) []any {
	return []any{&e.TenantID, &e.ProjectID, &e.ID, &e.EventSource, &e.EventID, &e.Version, &s.keys, &s.vals}
}

func (s *scanEnvelope) finish(e *clickhouse.Envelope) {
	e.Metadata = nil
	if len(s.keys) > 0 {
		e.Metadata = make(map[string]string, len(s.keys))
		for i, k := range s.keys {
			if i < len(s.vals) {
				e.Metadata[k] = s.vals[i]
			}
		}
	}
}

// goTime undoes the Store's mapping of an unknown time (zero time.Time) to the Unix epoch.
func goTime(t time.Time) time.Time {
	if t.Unix() == 0 && t.Nanosecond() == 0 {
		return time.Time{}
	}
	return t.UTC()
}

// Findings returns a project's findings, duplicates collapsed, ordered by the scanned entity's
// time, then its type and id, side, detector and span.
func Findings(ctx context.Context, s *clickhouse.Store, tenant, project string) ([]clickhouse.Finding, error) {
	q := fmt.Sprintf("SELECT %s FROM %s.%s FINAL WHERE tenant_id = ? AND project_id = ? ORDER BY timestamp, source_type, source_id, side, detector, span_start, span_end",
		strings.Join(clickhouse.TableFindings.Columns(), ", "), database(s), clickhouse.TableFindings)
	rows, err := s.Conn().Query(ctx, q, tenant, project)
	if err != nil {
		return nil, fmt.Errorf("readback: select findings: %w", err)
	}
	defer rows.Close()
	var out []clickhouse.Finding
	for rows.Next() {
		var f clickhouse.Finding
		var truncated uint8
		if err := rows.Scan(&f.TenantID, &f.ProjectID, &f.SourceType, &f.SourceID, &f.SourceEventID, &f.TraceID, &f.Timestamp,
			&f.Side, &f.Detector, &f.Category, &f.Entity, &f.Severity, &f.Score, &f.SpanStart, &f.SpanEnd, &f.Preview,
			&f.Fingerprint, &f.Action, &f.Reasons, &truncated, &f.EventSource, &f.EventID, &f.Version); err != nil {
			return nil, fmt.Errorf("readback: scan findings: %w", err)
		}
		f.Timestamp, f.Truncated = goTime(f.Timestamp), truncated == 1
		if len(f.Reasons) == 0 {
			f.Reasons = nil
		}
		out = append(out, f)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("readback: select findings: %w", err)
	}
	return out, nil
}
