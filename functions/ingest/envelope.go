package ingest

import (
	"errors"
	"fmt"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/cloudevents/sdk-go/v2/types"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/internal/jsonscan"
)

// Reading structured-mode events is most of ingest's work per event after validation, and the
// SDK's reader (json.Unmarshal's validity pass, then jsoniter with its maps and copies) costs
// several times what a pass over the bytes does. readEnvelope is that pass for the events
// clients actually send; anything unusual goes to the SDK's reader, whose answer is the rule.

// readEnvelope reads a structured-mode CloudEvents 1.0 event whose attributes are all plain
// strings (no escapes), whose data is JSON and whose extensions are strings. It reports false
// for anything else — duplicates, data_base64, other spec versions or content types, values
// the SDK would read differently or reject — and the caller then uses the SDK. When it reports
// true the event equals what the SDK reads from raw (FuzzReadEnvelope holds the two together).
func readEnvelope(raw []byte) (cloudevents.Event, bool) {
	s := jsonscan.New(raw)
	e, ok := readObject(&s)
	return e, ok && s.End()
}

// readObject reads, as readEnvelope does, the event object at s's cursor, consuming it.
func readObject(s *jsonscan.Scanner) (cloudevents.Event, bool) {
	if !s.BeginObject() {
		return cloudevents.Event{}, false
	}
	var ec event.EventContextV1
	var data []byte
	var seen uint16
	for {
		key, plainKey, ok := s.Member()
		if !ok {
			break
		}
		if !plainKey {
			return cloudevents.Event{}, false
		}
		name := string(key)
		if name == "data" {
			if seen&attrData != 0 {
				return cloudevents.Event{}, false
			}
			seen |= attrData
			if data = s.Skip(); data == nil {
				return cloudevents.Event{}, false
			}
			continue
		}
		if s.Peek() != jsonscan.String {
			return cloudevents.Event{}, false
		}
		content, plain := s.String()
		if !plain || len(content) == 0 {
			return cloudevents.Event{}, false
		}
		value := string(content)
		bit, known := envelopeAttrs[name]
		if !known {
			// The SDK lower-cases extension names, and sets those met before specversion in
			// map order: two names differing in case are its to settle.
			if _, dup := ec.Extensions[name]; dup || hasUpper(key) || ec.SetExtension(name, value) != nil {
				return cloudevents.Event{}, false
			}
			continue
		}
		if seen&bit != 0 {
			return cloudevents.Event{}, false
		}
		seen |= bit
		if !setAttr(&ec, bit, value) {
			return cloudevents.Event{}, false
		}
	}
	if s.Err() != nil || seen&attrSpecVersion == 0 {
		return cloudevents.Event{}, false
	}
	return cloudevents.Event{Context: &ec, DataEncoded: data}, true
}

// Bits of the attributes readEnvelope reads itself.
const (
	attrSpecVersion uint16 = 1 << iota
	attrID
	attrSource
	attrType
	attrSubject
	attrTime
	attrDataContentType
	attrDataSchema
	attrData
)

var envelopeAttrs = map[string]uint16{
	"specversion": attrSpecVersion, "id": attrID, "source": attrSource, "type": attrType,
	"subject": attrSubject, "time": attrTime, "datacontenttype": attrDataContentType,
	"dataschema": attrDataSchema,
	// Read by the SDK only: base64 data.
	"data_base64": 0,
}

// setAttr sets one attribute as the SDK's reader does, or reports false where that reader would
// do something readEnvelope does not (fail, drop the value, read data as a string).
func setAttr(ec *event.EventContextV1, bit uint16, v string) bool {
	switch bit {
	case attrSpecVersion:
		return v == cloudevents.VersionV1
	case attrID:
		ec.ID = v
	case attrType:
		ec.Type = v
	case attrSource:
		u := types.ParseURIRef(v)
		if u == nil {
			return false
		}
		ec.Source = *u
	case attrSubject:
		ec.Subject = &v
	case attrTime:
		t, err := types.ParseTimestamp(v)
		if err != nil || t == nil {
			return false
		}
		ec.Time = t
	case attrDataContentType:
		if v != contentTypeJSON {
			return false
		}
		ec.DataContentType = &v
	case attrDataSchema:
		u := types.ParseURI(v)
		if u == nil {
			return false
		}
		ec.DataSchema = u
	default:
		return false
	}
	return true
}

func hasUpper(b []byte) bool {
	for _, c := range b {
		if 'A' <= c && c <= 'Z' {
			return true
		}
	}
	return false
}

// batchElement is one element of a batch-mode body: its raw JSON, and the event read from it or
// the problems that make it no event.
type batchElement struct {
	raw      []byte
	event    cloudevents.Event
	problems []catalog.Problem
}

// tooManyEvents is readBatch's error for a batch of more than its limit of elements.
type tooManyEvents struct{ n int }

func (e tooManyEvents) Error() string { return fmt.Sprintf("the batch holds %d events", e.n) }

// readBatch reads a batch-mode body, a JSON array of structured-mode events, in one pass: each
// element is read where it lies, as decodeStructured reads it. It fails when the body is not a
// JSON array, and with tooManyEvents (after only counting the rest) when it holds more than max
// elements.
func readBatch(body []byte, max int) ([]batchElement, error) {
	s := jsonscan.New(body)
	var elems []batchElement
	n := 0
	if s.Peek() == jsonscan.Null {
		s.Null() // as encoding/json reads it: no events
	} else if s.BeginArray() {
		for ; s.Element(); n++ {
			if n >= max {
				s.Skip()
				continue
			}
			start := s
			e, ok := readObject(&s)
			if ok {
				elems = append(elems, batchElement{raw: body[start.Offset():s.Offset():s.Offset()], event: e})
				continue
			}
			s = start
			raw := s.Skip()
			if raw == nil {
				break // not JSON: s holds the error
			}
			e, problems := decodeStructuredSlowly(raw)
			elems = append(elems, batchElement{raw: raw, event: e, problems: problems})
		}
	}
	if !s.End() {
		if err := s.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("data after the array")
	}
	if n > max {
		return nil, tooManyEvents{n}
	}
	return elems, nil
}
