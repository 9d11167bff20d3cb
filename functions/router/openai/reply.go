package openai

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/trustplane/trustplane/internal/jsonscan"
)

// Reply is what router reads from a completion, an embeddings answer or a stream's chunk.
type Reply struct {
	Model   string        `json:"model"`
	Usage   *Usage        `json:"usage"`
	Choices []ReplyChoice `json:"choices"`
}

// ReplyChoice is a choice of a Reply: a whole message, or a stream chunk's delta.
type ReplyChoice struct {
	Index   int             `json:"index"`
	Message json.RawMessage `json:"message"`
	Delta   struct {
		Content   string     `json:"content"`
		ToolCalls []ToolCall `json:"tool_calls"`
	} `json:"delta"`
}

// ReadReply decodes a provider's answer or chunk. A stream has a chunk per few tokens, and an
// embeddings answer can hold megabytes of vectors router does not look at: encoding/json,
// reading every byte of them into Reply, was the largest part of router's own CPU on a
// stream. scanReply reads the few fields router needs in place and skips the rest, leaving
// anything unusual (tool calls, a key spelt in another case, a repeated key, a null where a
// value was expected) to encoding/json, so that both read every answer alike (FuzzReadReply
// checks it).
func ReadReply(data []byte) (Reply, error) {
	if r, ok := scanReply(data); ok {
		return r, nil
	}
	var r Reply
	err := json.Unmarshal(data, &r)
	return r, err
}

// scanReply reads an answer in place; ok false means encoding/json must read it.
func scanReply(data []byte) (r Reply, ok bool) {
	s := jsonscan.New(data)
	if !s.BeginObject() {
		return r, false
	}
	var seenModel, seenUsage, seenChoices bool
	for {
		key, plain, more := s.Member()
		if !more {
			break
		}
		if !plain {
			return r, false
		}
		switch string(key) {
		case "model":
			if seenModel {
				return r, false
			}
			seenModel = true
			if r.Model, ok = scanString(&s, false); !ok {
				return r, false
			}
		case "usage":
			if seenUsage {
				return r, false
			}
			seenUsage = true
			switch s.Peek() {
			case jsonscan.Null:
				s.Null()
			case jsonscan.Object:
				// One chunk per stream carries usage: encoding/json reads it.
				r.Usage = new(Usage)
				if json.Unmarshal(s.Skip(), r.Usage) != nil {
					return r, false
				}
			default:
				return r, false
			}
		case "choices":
			if seenChoices {
				return r, false
			}
			seenChoices = true
			if s.Peek() == jsonscan.Null {
				s.Null()
				continue
			}
			if !s.BeginArray() {
				return r, false
			}
			r.Choices = []ReplyChoice{}
			for s.Element() {
				var c ReplyChoice
				if !scanChoice(&s, &c) {
					return r, false
				}
				r.Choices = append(r.Choices, c)
			}
		default:
			if foldsTo(key, "model", "usage", "choices") {
				return r, false
			}
			s.Skip()
		}
	}
	return r, s.Err() == nil && s.End()
}

// scanChoice reads one choice: its index, message and delta.
func scanChoice(s *jsonscan.Scanner, c *ReplyChoice) bool {
	if !s.BeginObject() {
		return false
	}
	var seenIndex, seenMessage, seenDelta, seenContent, seenCalls bool
	for {
		key, plain, more := s.Member()
		if !more {
			return s.Err() == nil
		}
		if !plain {
			return false
		}
		switch string(key) {
		case "index":
			if seenIndex || s.Peek() != jsonscan.Number {
				return false
			}
			seenIndex = true
			n, err := strconv.Atoi(string(s.Number()))
			if err != nil {
				return false
			}
			c.Index = n
		case "message":
			if seenMessage {
				return false
			}
			seenMessage = true
			c.Message = s.Skip()
		case "delta":
			if seenDelta || !s.BeginObject() {
				return false
			}
			seenDelta = true
			for {
				key, plain, more := s.Member()
				if !more {
					break
				}
				if !plain {
					return false
				}
				switch string(key) {
				case "content":
					if seenContent {
						return false
					}
					seenContent = true
					var ok bool
					if c.Delta.Content, ok = scanString(s, true); !ok {
						return false
					}
				case "tool_calls":
					if seenCalls || s.Peek() != jsonscan.Null {
						return false // tool calls are read by encoding/json
					}
					seenCalls = true
					s.Null()
				default:
					if foldsTo(key, "content", "tool_calls") {
						return false
					}
					s.Skip()
				}
			}
		default:
			if foldsTo(key, "index", "delta", "message") {
				return false
			}
			s.Skip()
		}
	}
}

// scanString reads a string value, decoded; a null reads as "" where nullable (encoding/json
// leaves the field as it is, and it is "" until then).
func scanString(s *jsonscan.Scanner, nullable bool) (string, bool) {
	switch s.Peek() {
	case jsonscan.String:
		return jsonscan.Unquoted(s.String()), true
	case jsonscan.Null:
		if nullable {
			s.Null()
			return "", true
		}
	}
	return "", false
}

// foldsTo reports whether key matches one of names as encoding/json matches a key to a field:
// exactly, or in another case.
func foldsTo(key []byte, names ...string) bool {
	for _, n := range names {
		if bytes.EqualFold(key, []byte(n)) {
			return true
		}
	}
	return false
}
