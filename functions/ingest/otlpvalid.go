package ingest

import (
	"bytes"
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/internal/jsonscan"
)

// provenValid reports whether the catalog's validator certainly accepts the JSON encoding of
// a payload the mapper built, so that it need not run. It checks the schemas' bounds on the
// typed values, more strictly than the schemas where that is simpler (a string's bytes for its
// characters); false means "not proven", and the validator decides, as for a posted event.
// TestMappedEventsSkipOnlyWhatTheValidatorAccepts and the OTLP fuzzers hold it to the validator.
func provenValid(p catalog.Payload) bool {
	switch v := p.(type) {
	case *catalog.Observation:
		return validObservation(v)
	case *catalog.Trace:
		return validTrace(v)
	}
	return false
}

// The schemas' bounds (eventing/catalog/schemas).
const (
	maxIDBytes       = 128
	maxLabelBytes    = 512
	maxTextBytes     = 4096 // status_message, a metadata value
	maxProperties    = 64   // metadata, model_parameters
	maxTags          = 64
	maxUSD           = 1_000_000_000
	maxCountedTokens = 1_000_000_000_000
)

func validObservation(o *catalog.Observation) bool {
	return validID(o.ID) && validID(o.TraceID) && (o.ParentObservationID == "" || validID(o.ParentObservationID)) &&
		(o.Type == obsSpan || o.Type == obsGeneration) &&
		len(o.Name) <= maxLabelBytes && len(o.Model) <= maxLabelBytes &&
		validTime(o.StartTime) && (o.EndTime == nil || validTime(*o.EndTime)) && (o.CompletionStartTime == nil || validTime(*o.CompletionStartTime)) &&
		validParameters(o.ModelParameters) && validAny(o.Input) && validAny(o.Output) &&
		o.Usage.PromptTokens <= maxCountedTokens && o.Usage.CompletionTokens <= maxCountedTokens && o.Usage.TotalTokens <= maxCountedTokens &&
		validUSD(o.Cost.Input) && validUSD(o.Cost.Output) && validUSD(o.Cost.Total) &&
		(o.Level == "DEFAULT" || o.Level == "ERROR") && len(o.StatusMessage) <= maxTextBytes &&
		validMetadata(o.Metadata)
}

func validTrace(t *catalog.Trace) bool {
	if len(t.Tags) > maxTags {
		return false
	}
	for _, tag := range t.Tags {
		if len(tag) > maxLabelBytes {
			return false
		}
	}
	return validID(t.ID) && validTime(t.Timestamp) &&
		len(t.Name) <= maxLabelBytes && len(t.UserID) <= maxLabelBytes && len(t.SessionID) <= maxLabelBytes &&
		len(t.Release) <= maxLabelBytes && len(t.Version) <= maxLabelBytes && len(t.Environment) <= maxLabelBytes &&
		validMetadata(t.Metadata) && validAny(t.Input) && validAny(t.Output)
}

// validID: 1 to 128 printable ASCII characters, none a space.
func validID(s string) bool {
	if len(s) == 0 || len(s) > maxIDBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// validTime: the catalog's date-time bounds, a second after the epoch to the last second an
// unsigned 32-bit count of seconds holds.
func validTime(t time.Time) bool {
	u := t.Unix()
	return u >= 1 && u <= math.MaxUint32 && t.Location() == time.UTC
}

func validUSD(f float64) bool {
	return f > 0 && f <= maxUSD || f == 0 && !math.Signbit(f)
}

// validMetadata: at most 64 entries, each value at most 4096 bytes. Keys are valid UTF-8, so
// that no two become the same JSON key.
func validMetadata(md map[string]string) bool {
	if len(md) > maxProperties {
		return false
	}
	for k, v := range md {
		if len(v) > maxTextBytes || !utf8.ValidString(k) {
			return false
		}
	}
	return true
}

// validAny: any JSON value (the payload encoded, so it is JSON), nested less deeply than the
// validator reads (the event's own object is one more level). Fewer opening brackets than
// that, wherever they are, bound the depth.
func validAny(raw json.RawMessage) bool {
	return bytes.Count(raw, []byte{'['})+bytes.Count(raw, []byte{'{'}) < jsonscan.MaxDepth-2
}

// validParameters: an object of at most 64 members, its values any JSON.
func validParameters(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return true
	}
	if !validAny(raw) {
		return false
	}
	s := jsonscan.New(raw)
	if !s.BeginObject() {
		return false
	}
	for n := 0; ; n++ {
		if _, _, ok := s.Member(); !ok {
			return s.Err() == nil && n <= maxProperties
		}
		if s.Skip() == nil {
			return false
		}
	}
}
