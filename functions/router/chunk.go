package router

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/trustplane/trustplane/eventing/jsonscan"
)

// streamChunk is what router reads from one chunk of a streamed OpenAI answer.
type streamChunk struct {
	Model     string
	Usage     *Usage
	Choices   int // how many choices the chunk carries
	Index     int // the first choice's index
	Content   string
	ToolCalls []ToolCall
}

// readChunk decodes a streamed chunk. A stream has a chunk per few tokens, and decoding each with
// encoding/json was the largest part of router's own CPU on a stream: scanChunk reads the few
// fields router needs in place, and leaves anything unusual (tool calls, a key spelt in another
// case, a repeated key, a null where a value was expected) to encoding/json, so that both read
// every chunk alike (FuzzReadChunk checks it).
func readChunk(data []byte) (streamChunk, error) {
	if c, ok := scanChunk(data); ok {
		return c, nil
	}
	var r openAIReply
	if err := json.Unmarshal(data, &r); err != nil {
		return streamChunk{}, err
	}
	c := streamChunk{Model: r.Model, Usage: r.Usage, Choices: len(r.Choices)}
	if len(r.Choices) > 0 {
		c.Index, c.Content, c.ToolCalls = r.Choices[0].Index, r.Choices[0].Delta.Content, r.Choices[0].Delta.ToolCalls
	}
	return c, nil
}

// scanChunk reads a chunk in place; ok false means encoding/json must read it.
func scanChunk(data []byte) (c streamChunk, ok bool) {
	s := jsonscan.New(data)
	if !s.BeginObject() {
		return c, false
	}
	var seenModel, seenUsage, seenChoices bool
	for {
		key, plain, more := s.Member()
		if !more {
			break
		}
		if !plain {
			return c, false
		}
		switch string(key) {
		case "model":
			if seenModel {
				return c, false
			}
			seenModel = true
			if c.Model, ok = scanString(&s, false); !ok {
				return c, false
			}
		case "usage":
			if seenUsage {
				return c, false
			}
			seenUsage = true
			switch s.Peek() {
			case jsonscan.Null:
				s.Null()
			case jsonscan.Object:
				// One chunk per stream carries usage: encoding/json reads it.
				c.Usage = new(Usage)
				if json.Unmarshal(s.Skip(), c.Usage) != nil {
					return c, false
				}
			default:
				return c, false
			}
		case "choices":
			if seenChoices {
				return c, false
			}
			seenChoices = true
			if s.Peek() == jsonscan.Null {
				s.Null()
				continue
			}
			if !s.BeginArray() {
				return c, false
			}
			for s.Element() {
				if c.Choices++; c.Choices > 1 {
					s.Skip()
				} else if !scanChoice(&s, &c) {
					return c, false
				}
			}
		default:
			if foldsTo(key, "model", "usage", "choices") {
				return c, false
			}
			s.Skip()
		}
	}
	return c, s.Err() == nil && s.End()
}

// scanChoice reads the first choice of a chunk: its index and its delta's content.
func scanChoice(s *jsonscan.Scanner, c *streamChunk) bool {
	if !s.BeginObject() {
		return false
	}
	var seenIndex, seenDelta, seenContent, seenCalls bool
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
					if c.Content, ok = scanString(s, true); !ok {
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
		case "message":
			s.Skip()
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
		content, plain := s.String()
		if plain {
			return string(content), true
		}
		return string(jsonscan.AppendUnquote(nil, content)), true
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
