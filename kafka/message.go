package kafka

import (
	"bytes"
	"context"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
)

// binaryV1 hands a CloudEvents 1.0 event to the kafka_sarama binding in binary mode, writing the
// same attributes, extensions and data as binding.ToMessage(e) does. That message's accessors
// copy the whole event context for every attribute, and the extension map for every event,
// which in ingest's profile cost about a quarter of the binding's time; this reads the context
// directly.
type binaryV1 struct {
	ec   *cloudevents.EventContextV1
	data []byte
}

// v1Attributes are the attributes of CloudEvents 1.0 in the order the SDK writes them.
var v1Attributes = spec.VS.Version(cloudevents.CloudEventsVersionV1).Attributes()

// messageOf is the binding message for e: binaryV1 for a CloudEvents 1.0 event (which Validate
// has accepted), the SDK's own message for anything else.
func messageOf(e *cloudevents.Event) binding.Message {
	if ec, ok := e.Context.(*cloudevents.EventContextV1); ok {
		return binaryV1{ec: ec, data: e.DataEncoded}
	}
	return binding.ToMessage(e)
}

func (binaryV1) ReadEncoding() binding.Encoding { return binding.EncodingBinary }

func (binaryV1) ReadStructured(context.Context, binding.StructuredWriter) error {
	return binding.ErrNotStructured
}

func (m binaryV1) ReadBinary(_ context.Context, w binding.BinaryWriter) error {
	for _, a := range v1Attributes {
		if v := m.attribute(a.Kind()); v != nil {
			if err := w.SetAttribute(a, v); err != nil {
				return err
			}
		}
	}
	for name, v := range m.ec.Extensions {
		if err := w.SetExtension(name, v); err != nil {
			return err
		}
	}
	if len(m.data) > 0 {
		return w.SetData(bytes.NewReader(m.data))
	}
	return nil
}

// attribute is the value of an attribute as the SDK's accessors return it: a string, or a
// time.Time for time, and nil for a blank or zero one.
func (m binaryV1) attribute(k spec.Kind) any {
	ec := m.ec
	var s string
	switch k {
	case spec.SpecVersion:
		s = cloudevents.CloudEventsVersionV1
	case spec.ID:
		s = ec.ID
	case spec.Source:
		s = ec.Source.String()
	case spec.Type:
		s = ec.Type
	case spec.DataContentType:
		if ec.DataContentType != nil {
			s = *ec.DataContentType
		}
	case spec.DataSchema:
		if ec.DataSchema != nil {
			s = ec.DataSchema.String()
		}
	case spec.Subject:
		if ec.Subject != nil {
			s = *ec.Subject
		}
	case spec.Time:
		if ec.Time != nil && !ec.Time.IsZero() {
			return ec.Time.Time
		}
	}
	if s == "" {
		return nil
	}
	return s
}

func (m binaryV1) GetAttribute(k spec.Kind) (spec.Attribute, any) {
	for _, a := range v1Attributes {
		if a.Kind() == k {
			return a, m.attribute(k)
		}
	}
	return nil, nil
}

// GetExtension looks name up as the SDK's message does: ignoring case.
func (m binaryV1) GetExtension(name string) any {
	v, _ := m.ec.GetExtension(name)
	return v
}

func (binaryV1) Finish(error) error { return nil }
