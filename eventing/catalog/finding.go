package catalog

import "time"

// TypeFinding is what the guard function found in one telemetry event: its security findings
// (personal data, secrets, prompt injections), never the matched values. guard answers a
// delivery with one such event, carrying every finding of the event, and the broker routes it
// to persist, which stores one row per finding.
const TypeFinding = "io.trustplane.security.finding.v1"

// SecurityPrefix is shared by the security types; they are produced inside the plane (guard),
// never accepted from applications, and a Trigger of their own delivers them to persist.
const SecurityPrefix = "io.trustplane.security."

// Sides of a finding: what was scanned. Router inspects the request it forwards and the
// response it returns; guard the input and output of a telemetry event.
const (
	SideRequest  = "request"
	SideResponse = "response"
	SideInput    = "input"
	SideOutput   = "output"
)

// Actions taken on a finding. guard, which runs after the fact, only observes.
const (
	ActionBlock   = "block"
	ActionMask    = "mask"
	ActionObserve = "observe"
)

// FindingSides and FindingActions are the values of a finding's side and action, as in the
// schema.
func FindingSides() []string   { return []string{SideRequest, SideResponse, SideInput, SideOutput} }
func FindingActions() []string { return []string{ActionBlock, ActionMask, ActionObserve} }

// MaxFindings bounds the findings of one event (and of one LLM call's guard record).
const MaxFindings = 1024

// Findings is the data of TypeFinding: the findings of one scanned event.
type Findings struct {
	// SourceType and SourceID are the scanned event's type and its payload's id (an
	// observation's or LLM call's id): with the tenant and project they identify the scanned
	// entity, so a redelivered or re-posted event yields the same finding rows.
	SourceType string `json:"source_type"`
	SourceID   string `json:"source_id"`
	// SourceEventID is the CloudEvents id of the scanned event.
	SourceEventID string `json:"source_event_id,omitempty"`
	TraceID       string `json:"trace_id,omitempty"`
	// Timestamp is the scanned entity's time (an observation's start_time, an LLM call's
	// timestamp); the rows are partitioned by it.
	Timestamp time.Time `json:"timestamp"`
	Findings  []Finding `json:"findings"`
}

// PartitionKey implements Payload: the trace of the scanned entity, else the entity itself.
func (f *Findings) PartitionKey() string {
	if f.TraceID != "" {
		return f.TraceID
	}
	return f.SourceID
}

// Finding is one finding as events carry it (functions/guard/detect's Finding, with the
// action taken and the side scanned). Start and End are byte offsets into the side's text: the
// string values of its JSON, unescaped and joined by newlines, in document order.
type Finding struct {
	Detector    string   `json:"detector"`
	Category    string   `json:"category"`
	Entity      string   `json:"entity"`
	Severity    string   `json:"severity"`
	Score       float64  `json:"score"`
	Start       int      `json:"start"`
	End         int      `json:"end"`
	Preview     string   `json:"preview"`
	Fingerprint string   `json:"fingerprint,omitempty"`
	Action      string   `json:"action"`
	Side        string   `json:"side"`
	Reasons     []string `json:"reasons,omitempty"`
	// Truncated says the side's text was longer than the scanner's bound and its rest was not
	// scanned.
	Truncated bool `json:"truncated,omitempty"`
}
