package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustplane/trustplane/eventing/catalog"
)

// TableFindings holds one row per security finding: guard's findings on telemetry and
// router's inline findings on LLM calls.
const TableFindings Table = "findings"

// Finding is one row of the findings table. A row is identified by tenant, project, the day of
// the scanned entity's time, the entity (SourceType, SourceID), Side, Detector and span: a
// redelivered or re-posted event writes the same rows, and ReplacingMergeTree keeps the one of
// the highest Version. It never holds the matched value: only its span, a masked preview and a
// keyed fingerprint.
type Finding struct {
	TenantID  string
	ProjectID string
	// SourceType and SourceID are the scanned event's type and its payload's id.
	SourceType    string
	SourceID      string
	SourceEventID string // the CloudEvents id of the scanned event
	TraceID       string
	Timestamp     time.Time // the scanned entity's time
	Side          string    // request, response, input or output
	Detector      string
	Category      string
	Entity        string
	Severity      string
	Score         float64
	SpanStart     uint32
	SpanEnd       uint32
	Preview       string
	Fingerprint   string
	Action        string // block, mask or observe
	Reasons       []string
	Truncated     bool
	// EventSource and EventID are the CloudEvents source and id of the event that wrote the row.
	EventSource string
	EventID     string
	// Version is as in Envelope: the scanned event's ingestion time in Unix milliseconds.
	Version uint64
}

var findingColumns = []string{"tenant_id", "project_id", "source_type", "source_id", "source_event_id", "trace_id", "timestamp",
	"side", "detector", "category", "entity", "severity", "score", "span_start", "span_end", "preview", "fingerprint",
	"action", "reasons", "truncated", "event_source", "event_id", "version"}

func (f *Finding) validate() error {
	var span error
	if f.SpanEnd < f.SpanStart {
		span = fmt.Errorf("span_end %d is before span_start %d", f.SpanEnd, f.SpanStart)
	}
	return errors.Join(nonEmpty("tenant_id", f.TenantID), nonEmpty("project_id", f.ProjectID),
		nonEmpty("source_type", f.SourceType), nonEmpty("source_id", f.SourceID), nonEmpty("detector", f.Detector),
		required("timestamp", f.Timestamp), oneOf("side", f.Side, catalog.FindingSides()...),
		oneOf("action", f.Action, catalog.FindingActions()...), span)
}

func (f *Finding) values(defaultVersion uint64) []any {
	v := f.Version
	if v == 0 {
		v = defaultVersion
	}
	var truncated uint8
	if f.Truncated {
		truncated = 1
	}
	reasons := f.Reasons
	if reasons == nil {
		reasons = []string{}
	}
	return []any{f.TenantID, f.ProjectID, f.SourceType, f.SourceID, f.SourceEventID, f.TraceID, dbTime(f.Timestamp),
		f.Side, f.Detector, f.Category, f.Entity, f.Severity, f.Score, f.SpanStart, f.SpanEnd, f.Preview, f.Fingerprint,
		f.Action, reasons, truncated, f.EventSource, f.EventID, v}
}

// writeFindings inserts the batch's findings; Write calls it last.
func (s *Store) writeFindings(ctx context.Context, rows []Finding, now uint64) error {
	return insert(ctx, s, TableFindings, findingColumns, rows, func(f *Finding) time.Time { return f.Timestamp },
		func(f *Finding) []any { return f.values(now) })
}
