package dispatcher

import (
	"bytes"
	"context"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/cloudevents/sdk-go/protocol/kafka_sarama/v2"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/format"
	ceevent "github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/cloudevents/sdk-go/v2/types"
)

// incoming is one record as delivery needs it: attributes for the filter, the full event for
// CESQL and dead letters, and the binary-mode HTTP request.
type incoming interface {
	// lookup finds a context attribute or extension as Knative's filters see it.
	lookup(name string) (any, bool)
	// event is the record decoded into a CloudEvent.
	event() (*cloudevents.Event, error)
	// writeRequest puts the event on req in binary mode.
	writeRequest(req *http.Request) error
	id() string
	eventType() string
}

// readRecord returns the record ready for delivery, or an error when it is not a valid
// CloudEvent. Binary-mode CloudEvents 1.0 records (what trustplane produces) are read
// straight from their headers and their value is sent on as the body; anything else is decoded
// by the CloudEvents SDK. Both give the same attributes, the same HTTP request and the same
// validation; a record the direct reading is unsure about goes the SDK's way.
func readRecord(ctx context.Context, msg *sarama.ConsumerMessage) (incoming, error) {
	if r, ok := readBinaryV1(msg); ok {
		return r, nil
	}
	ev, err := decodeRecord(ctx, msg)
	if err != nil {
		return nil, err
	}
	return decodedEvent{ev}, nil
}

// decodeRecord is the CloudEvents SDK's reading of a record, validated.
func decodeRecord(ctx context.Context, msg *sarama.ConsumerMessage) (*cloudevents.Event, error) {
	ev, err := binding.ToEvent(ctx, kafka_sarama.NewMessageFromConsumerMessage(msg))
	if err == nil {
		err = ev.Validate()
	}
	if err != nil {
		return nil, err
	}
	return ev, nil
}

// decodedEvent is a record decoded by the SDK.
type decodedEvent struct{ ev *cloudevents.Event }

func (d decodedEvent) lookup(name string) (any, bool)     { return lookupAttribute(d.ev, name) }
func (d decodedEvent) event() (*cloudevents.Event, error) { return d.ev, nil }
func (d decodedEvent) id() string                         { return d.ev.ID() }
func (d decodedEvent) eventType() string                  { return d.ev.Type() }

func (d decodedEvent) writeRequest(req *http.Request) error {
	return cehttp.WriteRequest(req.Context(), binding.ToMessage(d.ev), req)
}

// Header names the SDK's HTTP binding writes for CloudEvents 1.0 attributes.
const (
	headerID          = "Ce-Id"
	headerSource      = "Ce-Source"
	headerType        = "Ce-Type"
	headerSpecVersion = "Ce-Specversion"
	headerSubject     = "Ce-Subject"
	headerTime        = "Ce-Time"
	headerContentType = "Content-Type"
)

// binaryRecord is a binary-mode CloudEvents 1.0 record read from its headers. The SDK's
// decoding adds the kafkaoffset, kafkapartition and kafkatopic extensions; so does this.
type binaryRecord struct {
	msg                        *sarama.ConsumerMessage
	evID, source, typ          string
	subject, contentType       string
	hasSubject, hasContentType bool
	time                       time.Time
	hasTime                    bool
	extensions                 []extension // from ce_ headers, last duplicate wins
	cached                     *cloudevents.Event
	offsetText, partitionText  string
}

type extension struct{ name, value string }

// readBinaryV1 reads msg if it is a binary-mode CloudEvents 1.0 record that the SDK would
// decode and validate without error; ok is false otherwise (including for records that are
// valid but unusual, such as ones with a dataschema), and the SDK decides.
func readBinaryV1(msg *sarama.ConsumerMessage) (r *binaryRecord, ok bool) {
	r = &binaryRecord{msg: msg}
	var specVersion, rawSource, rawTime string
	var hasID, hasSource, hasType bool
	for _, h := range msg.Headers {
		if h == nil {
			continue
		}
		key := h.Key
		if len(key) >= 3 && asciiEqualFold(key[:3], "ce_") {
			name := strings.ToLower(string(key[3:]))
			value := string(h.Value)
			switch name {
			case "specversion":
				specVersion = value
			case "id":
				r.evID, hasID = value, true
			case "source":
				rawSource, hasSource = value, true
			case "type":
				r.typ, hasType = value, true
			case "subject":
				r.subject, r.hasSubject = value, true
			case "time":
				rawTime, r.hasTime = value, true
			case "datacontenttype", "dataschema", "kafkaoffset", "kafkapartition", "kafkatopic":
				// Two sources for one attribute, or rare ones: the SDK's reading decides.
				return nil, false
			default:
				if !plainExtensionName(name) {
					return nil, false
				}
				r.setExtension(name, value)
			}
		} else if asciiEqualFold(key, "content-type") {
			r.contentType, r.hasContentType = string(h.Value), true
		}
	}
	// The content type alone (no ce_specversion) would make a structured-mode record.
	if specVersion != ceevent.CloudEventsVersionV1 || !hasID || !hasSource || !hasType {
		return nil, false
	}
	if r.hasContentType && format.Lookup(r.contentType) != nil {
		return nil, false
	}
	// The checks of EventContextV1.Validate and of the SDK's attribute conversions. The SDK
	// trims id, type, subject and datacontenttype (and drops an empty subject or content
	// type); values needing that are left to it.
	if !trimmedNonEmpty(r.evID) || !trimmedNonEmpty(r.typ) ||
		(r.hasSubject && !trimmedNonEmpty(r.subject)) || (r.hasContentType && !trimmedNonEmpty(r.contentType)) {
		return nil, false
	}
	src := types.ParseURIRef(rawSource)
	if src == nil {
		return nil, false
	}
	if r.source = src.String(); strings.TrimSpace(r.source) == "" {
		return nil, false
	}
	if r.hasTime {
		t, err := types.ToTime(rawTime)
		if err != nil || t.IsZero() {
			return nil, false // the SDK drops a zero time
		}
		r.time = t
	}
	if r.hasContentType && !validMediaType(r.contentType) {
		return nil, false
	}
	r.offsetText = strconv.FormatInt(msg.Offset, 10)
	r.partitionText = strconv.FormatInt(int64(msg.Partition), 10)
	return r, true
}

func (r *binaryRecord) setExtension(name, value string) {
	for i := range r.extensions {
		if r.extensions[i].name == name {
			r.extensions[i].value = value
			return
		}
	}
	r.extensions = append(r.extensions, extension{name, value})
}

func (r *binaryRecord) id() string        { return r.evID }
func (r *binaryRecord) eventType() string { return r.typ }

// lookup answers as lookupAttribute does for the SDK's decoding of the record.
func (r *binaryRecord) lookup(name string) (any, bool) {
	switch name {
	case "specversion":
		return ceevent.CloudEventsVersionV1, true
	case "type":
		return r.typ, true
	case "source":
		return r.source, true
	case "subject":
		return r.subject, true
	case "id":
		return r.evID, true
	case "time":
		// As the event reports it: the zero time when absent, else in the offset it was given in.
		b, err := r.time.MarshalText()
		if err != nil {
			return nil, false
		}
		return string(b), true
	case "dataschema", "schemaurl", "datacontentencoding":
		return "", true
	case "datacontenttype":
		return r.contentType, true
	case "datamediatype":
		if !r.hasContentType {
			return "", true
		}
		mt, _ := (&ceevent.EventContextV1{DataContentType: &r.contentType}).GetDataMediaType()
		return mt, true
	case "kafkaoffset":
		return r.offsetText, true
	case "kafkapartition":
		return r.partitionText, true
	case "kafkatopic":
		return r.msg.Topic, true
	}
	for _, e := range r.extensions {
		if e.name == name {
			return e.value, true
		}
	}
	return nil, false
}

// event decodes the record with the SDK (for CESQL filters, dead letters and replies' keys);
// done at most once per record.
func (r *binaryRecord) event() (*cloudevents.Event, error) {
	if r.cached == nil {
		ev, err := decodeRecord(context.Background(), r.msg)
		if err != nil {
			return nil, err
		}
		r.cached = ev
	}
	return r.cached, nil
}

// writeRequest writes the headers the SDK's HTTP binding would write, and the record's value
// as the body, untouched.
func (r *binaryRecord) writeRequest(req *http.Request) error {
	h := req.Header
	h[headerSpecVersion] = []string{ceevent.CloudEventsVersionV1}
	h[headerID] = []string{r.evID}
	h[headerSource] = []string{r.source}
	h[headerType] = []string{r.typ}
	if r.hasSubject {
		h[headerSubject] = []string{r.subject}
	}
	if r.hasTime {
		h[headerTime] = []string{types.FormatTime(r.time)}
	}
	if r.hasContentType {
		h[headerContentType] = []string{r.contentType}
	}
	for _, e := range r.extensions {
		h[extensionHeader(e.name)] = []string{e.value}
	}
	h["Ce-Kafkaoffset"] = []string{r.offsetText}
	h["Ce-Kafkapartition"] = []string{r.partitionText}
	h["Ce-Kafkatopic"] = []string{r.msg.Topic}
	body := r.msg.Value
	req.ContentLength = int64(len(body))
	if len(body) == 0 {
		req.Body, req.GetBody = http.NoBody, func() (io.ReadCloser, error) { return http.NoBody, nil }
		return nil
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	return nil
}

// extensionHeader is the SDK's header name for an extension: "Ce-" and the name with its
// first letter upper-cased (names are lower-case ASCII letters and digits here).
func extensionHeader(name string) string {
	first := name[0]
	if first >= 'a' && first <= 'z' {
		first -= 'a' - 'A'
	}
	return "Ce-" + string(first) + name[1:]
}

// plainExtensionName is a name the SDK accepts as an extension and does not treat specially:
// lower-case ASCII letters and digits, not a CloudEvents 1.0 attribute.
func plainExtensionName(name string) bool {
	if name == "" || (ceevent.MaxExtensionNameLength > 0 && len(name) > ceevent.MaxExtensionNameLength) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

func trimmedNonEmpty(s string) bool { return s != "" && strings.TrimSpace(s) == s }

// validMediaType is EventContextV1.Validate's check of datacontenttype.
func validMediaType(ct string) bool {
	if ct == "application/json" {
		return true // the common case, without parsing
	}
	_, _, err := mime.ParseMediaType(ct)
	return err == nil
}

// asciiEqualFold compares b with a lower-case ASCII string, ignoring case.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
