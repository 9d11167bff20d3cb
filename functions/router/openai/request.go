package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/trustplane/trustplane/internal/jsonscan"
)

// A chat request carries the whole conversation, often tens of kilobytes; encoding/json reads it
// at about 40 MB/s on the project's build machine (0.8 ms for 32 KB, reading it twice and
// writing it once more to forward it). So the request's fields are found in place
// (internal/jsonscan), each decoded from its own bytes, messages read in place too, and the
// forwarded body is the client's bytes with router's fields replaced. Anything unusual (an
// escaped, repeated or case-folded key, a value of an unexpected kind) is read by encoding/json;
// FuzzDecodeRequest checks that both read every body alike.

// ParseChatRequest parses and validates a chat completion request.
func ParseChatRequest(body []byte) (*ChatRequest, error) {
	if tooManyValues(body, maxRequestValues) {
		return nil, &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest,
			Message: fmt.Sprintf("the request holds more than %d values in its arrays and objects", maxRequestValues)}
	}
	var r ChatRequest
	if err := decodeRequest(body, &r, &r.raw); err != nil {
		return nil, err
	}
	if r.Model == "" {
		return nil, &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: "model", Message: "model is required"}
	}
	if len(r.Messages) == 0 {
		return nil, &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: "messages", Message: "messages must hold at least one message"}
	}
	for i, m := range r.Messages {
		switch m.Role {
		case "system", "developer", "user", "assistant", "tool":
		default:
			return nil, &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: fmt.Sprintf("messages[%d].role", i),
				Message: fmt.Sprintf("messages[%d].role must be system, developer, user, assistant or tool, got %q", i, m.Role)}
		}
	}
	return &r, nil
}

// ParseEmbeddingRequest parses and validates an embeddings request.
func ParseEmbeddingRequest(body []byte) (*EmbeddingRequest, error) {
	var r EmbeddingRequest
	if err := decodeRequest(body, &r, &r.raw); err != nil {
		return nil, err
	}
	if r.Model == "" {
		return nil, &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: "model", Message: "model is required"}
	}
	if len(r.Input) == 0 || string(r.Input) == "null" {
		return nil, &APIError{Status: http.StatusBadRequest, Type: TypeInvalidRequest, Param: "input", Message: "input is required"}
	}
	return &r, nil
}

// decodeRequest parses body into v (a *ChatRequest or *EmbeddingRequest) and keeps the raw
// fields.
func decodeRequest(body []byte, v any, raw *map[string]json.RawMessage) error {
	if m, ok := scanMembers(body); ok && decodeMembers(m, v) {
		*raw = m
		return nil
	}
	return decodeRequestSlowly(body, v, raw)
}

// decodeRequestSlowly is decodeRequest with encoding/json alone.
func decodeRequestSlowly(body []byte, v any, raw *map[string]json.RawMessage) error {
	if err := json.Unmarshal(body, raw); err != nil {
		return fmt.Errorf("the body is not a JSON object: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the body does not match the API: %w", err)
	}
	return nil
}

// scanMembers returns the members of the JSON object body, each value a sub-slice of body; ok
// is false unless body is one object whose keys are unescaped and distinct.
func scanMembers(body []byte) (map[string]json.RawMessage, bool) {
	s := jsonscan.New(body)
	if !s.BeginObject() {
		return nil, false
	}
	m := make(map[string]json.RawMessage, 8)
	for {
		key, plain, more := s.Member()
		if !more {
			break
		}
		if _, dup := m[string(key)]; !plain || dup {
			return nil, false
		}
		v := s.Skip()
		if v == nil {
			return nil, false
		}
		m[string(key)] = v
	}
	return m, s.Err() == nil && s.End()
}

var messageFields = []string{"role", "content", "name", "tool_calls", "tool_call_id"}

// member is a field of a request: its JSON key, and where encoding/json would decode its value
// (nil for a field decodeMembers sets itself).
type member struct {
	key    string
	target any
}

// decodeMembers sets v's fields from m's members, as encoding/json would from the whole object;
// false when it cannot tell that it would.
func decodeMembers(m map[string]json.RawMessage, v any) bool {
	var fields []member
	switch r := v.(type) {
	case *ChatRequest:
		if raw, ok := m["messages"]; ok {
			msgs, ok := scanMessages(raw)
			if !ok {
				return false
			}
			r.Messages = msgs
		}
		// Raw fields keep the bytes the scan checked, as encoding/json would copy them.
		r.Stop, r.ToolChoice = m["stop"], m["tool_choice"]
		fields = []member{{"model", &r.Model}, {"messages", nil}, {"stream", &r.Stream}, {"stream_options", &r.StreamOptions},
			{"max_tokens", &r.MaxTokens}, {"max_completion_tokens", &r.MaxCompletionTokens}, {"temperature", &r.Temperature},
			{"top_p", &r.TopP}, {"stop", nil}, {"tools", &r.Tools}, {"tool_choice", nil}, {"user", &r.User}}
	case *EmbeddingRequest:
		r.Input = m["input"] // an embeddings input can be megabytes of texts or token ids
		fields = []member{{"model", &r.Model}, {"input", nil}}
	default:
		return false
	}
	for key, raw := range m {
		i := slices.IndexFunc(fields, func(f member) bool { return f.key == key })
		if i < 0 {
			for _, f := range fields {
				if foldsTo([]byte(key), f.key) {
					return false
				}
			}
			continue
		}
		if t := fields[i].target; t != nil && json.Unmarshal(raw, t) != nil {
			return false
		}
	}
	return true
}

// scanMessages reads a request's messages in place: each content stays the client's bytes.
func scanMessages(raw []byte) ([]Message, bool) {
	s := jsonscan.New(raw)
	if s.Peek() == jsonscan.Null {
		return nil, true
	}
	if !s.BeginArray() {
		return nil, false
	}
	msgs := []Message{}
	for s.Element() {
		if !s.BeginObject() {
			return nil, false
		}
		var m Message
		var seen uint // bit i: messageFields[i] was read
		for {
			key, plain, more := s.Member()
			if !more {
				break
			}
			if !plain {
				return nil, false
			}
			if i := slices.Index(messageFields, string(key)); i >= 0 {
				if seen&(1<<i) != 0 {
					return nil, false
				}
				seen |= 1 << i
			}
			ok := true
			switch string(key) {
			case "role":
				m.Role, ok = scanString(&s, true)
			case "content":
				m.Content = s.Skip()
			case "name":
				m.Name, ok = scanString(&s, true)
			case "tool_call_id":
				m.ToolCallID, ok = scanString(&s, true)
			case "tool_calls":
				ok = json.Unmarshal(s.Skip(), &m.ToolCalls) == nil
			default:
				if foldsTo(key, messageFields...) {
					return nil, false
				}
				s.Skip()
			}
			if !ok || s.Err() != nil {
				return nil, false
			}
		}
		msgs = append(msgs, m)
	}
	return msgs, s.Err() == nil && s.End()
}

// Raw is a member of the request as the client sent it (nil when absent).
func (r *ChatRequest) Raw(key string) json.RawMessage { return r.raw[key] }

// Forward is the request as sent to an OpenAI-compatible upstream: the client's object with the
// given fields replaced (a nil value removes the field).
func (r *ChatRequest) Forward(fields map[string]any) ([]byte, error) {
	return withFields(r.raw, fields)
}

// Forward is the embeddings request with the given fields replaced, as for a chat request.
func (r *EmbeddingRequest) Forward(fields map[string]any) ([]byte, error) {
	return withFields(r.raw, fields)
}

// withFields returns raw with the given fields replaced (a nil value removes the field), as
// one JSON object with its keys in order: how a request is forwarded to an OpenAI-compatible
// upstream with the served model name. The client's values are copied as they came.
func withFields(raw map[string]json.RawMessage, fields map[string]any) ([]byte, error) {
	values := make(map[string]json.RawMessage, len(raw)+len(fields))
	size := 2
	for k, v := range raw {
		if _, replaced := fields[k]; !replaced {
			values[k] = v
		}
	}
	for k, v := range fields {
		if v == nil {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		values[k] = b
	}
	keys := make([]string, 0, len(values))
	for k, v := range values {
		keys = append(keys, k)
		size += len(k) + len(v) + 8
	}
	slices.Sort(keys)
	out := make([]byte, 0, size)
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		quoted, err := json.Marshal(k)
		if err != nil {
			return nil, err
		}
		out = append(append(append(out, quoted...), ':'), values[k]...)
	}
	return append(out, '}'), nil
}

// maxRequestValues bounds the values in a chat request's arrays and objects. Messages, tool
// calls and tools are decoded into structs of about 100 bytes each: a 4 MiB body of empty
// messages ([{},{},...]) would take some 150 MB to read before any check could refuse it. A
// real conversation, however long, holds a few thousand.
const maxRequestValues = 200_000

// tooManyValues reports whether body, a JSON document, holds more than limit values in its
// arrays and objects. Counting commas and brackets bounds that from above at memory speed;
// only a body past the bound (megabytes of prose, whose commas count too) is walked.
func tooManyValues(body []byte, limit int) bool {
	if bytes.Count(body, []byte(","))+bytes.Count(body, []byte("["))+bytes.Count(body, []byte("{")) <= limit {
		return false
	}
	budget := limit
	s := jsonscan.New(body)
	return !countValues(&s, &budget) && s.Err() == nil
}

// countValues walks the next value, taking one from budget for each value in its arrays and
// objects; false when the budget ran out (or the document is not JSON: s.Err says).
func countValues(s *jsonscan.Scanner, budget *int) bool {
	switch s.Peek() {
	case jsonscan.Object:
		s.BeginObject()
		for {
			if _, _, more := s.Member(); !more {
				break
			}
			if *budget--; *budget < 0 || !countValues(s, budget) {
				return false
			}
		}
	case jsonscan.Array:
		s.BeginArray()
		for s.Element() {
			if *budget--; *budget < 0 || !countValues(s, budget) {
				return false
			}
		}
	default:
		s.Skip()
	}
	return s.Err() == nil
}
