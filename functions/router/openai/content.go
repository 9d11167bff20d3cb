package openai

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/trustplane/trustplane/internal/jsonscan"
)

// ContentTexts are the texts of a message's content, as the model reads them: a string
// content itself, or the text parts of an array of content parts ({"type":"text","text":...});
// nil for a null or absent content. Guard scans them.
func ContentTexts(content json.RawMessage) []string {
	s := jsonscan.New(content)
	switch s.Peek() {
	case jsonscan.String:
		c, plain := s.String()
		return []string{jsonscan.Unquoted(c, plain)}
	case jsonscan.Array:
		var parts []struct {
			Type string  `json:"type"`
			Text *string `json:"text"`
		}
		if json.Unmarshal(content, &parts) != nil {
			return nil
		}
		var out []string
		for _, p := range parts {
			if p.Type == "text" && p.Text != nil {
				out = append(out, *p.Text)
			}
		}
		return out
	}
	return nil
}

// ReplaceContentTexts is content with its texts (as ContentTexts lists them) replaced by texts,
// one for one; every other part is kept.
func ReplaceContentTexts(content json.RawMessage, texts []string) (json.RawMessage, error) {
	s := jsonscan.New(content)
	switch s.Peek() {
	case jsonscan.String:
		if len(texts) != 1 {
			return nil, fmt.Errorf("openai: %d texts for a string content", len(texts))
		}
		return json.Marshal(texts[0])
	case jsonscan.Array:
		var parts []map[string]json.RawMessage
		if err := json.Unmarshal(content, &parts); err != nil {
			return nil, err
		}
		n := 0
		for _, p := range parts {
			var typ string
			if json.Unmarshal(p["type"], &typ) != nil || typ != "text" || p["text"] == nil || string(p["text"]) == "null" {
				continue
			}
			if n >= len(texts) {
				return nil, errors.New("openai: fewer texts than text parts")
			}
			b, err := json.Marshal(texts[n])
			if err != nil {
				return nil, err
			}
			p["text"] = b
			n++
		}
		if n != len(texts) {
			return nil, errors.New("openai: more texts than text parts")
		}
		return json.Marshal(parts)
	}
	return nil, errors.New("openai: the content holds no text")
}

// SetContents replaces the contents of the request's messages (contents[i] for message i; nil
// keeps it), in what providers read (Messages) and in what is forwarded (the client's
// messages, every other member kept byte for byte). A message whose content cannot be found
// unambiguously (an escaped or repeated key) is an error: the request is then not forwarded
// half-changed.
func (r *ChatRequest) SetContents(contents []json.RawMessage) error {
	raw := r.raw["messages"]
	s := jsonscan.New(raw)
	if !s.BeginArray() {
		return errors.New("openai: messages is not an array")
	}
	out := make([]byte, 0, len(raw)+64)
	last, replaced, want := 0, 0, 0
	for _, c := range contents {
		if c != nil {
			want++
		}
	}
	for i := 0; s.Element(); i++ {
		if !s.BeginObject() {
			return errors.New("openai: a message is not an object")
		}
		seen := false
		for {
			key, plain, more := s.Member()
			if !more {
				break
			}
			if !plain {
				return errors.New("openai: a message has an escaped key")
			}
			v := s.Skip()
			if string(key) != "content" {
				continue
			}
			if seen {
				return fmt.Errorf("openai: messages[%d] has two contents", i)
			}
			seen = true
			if i < len(contents) && contents[i] != nil {
				end := s.Offset()
				start := end - len(v)
				out = append(append(out, raw[last:start]...), contents[i]...)
				last = end
				replaced++
			}
		}
	}
	if err := s.Err(); err != nil {
		return err
	}
	if replaced != want {
		return fmt.Errorf("openai: %d of %d contents replaced", replaced, want)
	}
	out = append(out, raw[last:]...)
	for i, c := range contents {
		if c != nil && i < len(r.Messages) {
			r.Messages[i].Content = c
		}
	}
	r.raw["messages"] = out
	return nil
}

// SetInput replaces the embeddings request's input.
func (r *EmbeddingRequest) SetInput(input json.RawMessage) {
	r.Input = input
	r.raw["input"] = input
}

// EmbeddingTexts are the texts of an embeddings input: a string, or an array of strings (token
// arrays have no text).
func EmbeddingTexts(input json.RawMessage) ([]string, bool) {
	var one string
	if json.Unmarshal(input, &one) == nil {
		return []string{one}, true
	}
	var many []string
	if json.Unmarshal(input, &many) == nil {
		return many, false
	}
	return nil, false
}

// SetDeltaContent is a stream chunk with its first choice's delta content replaced by content,
// every other member kept. The common shape is rewritten in place (the content's bytes
// replaced); anything else is decoded and encoded again.
func SetDeltaContent(chunk []byte, content string) ([]byte, error) {
	if start, end, ok := deltaContent(chunk); ok {
		c, err := json.Marshal(content)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(chunk)-(end-start)+len(c))
		return append(append(append(out, chunk[:start]...), c...), chunk[end:]...), nil
	}
	return setDeltaContentSlowly(chunk, content)
}

// deltaContent finds the value of choices[0].delta.content in chunk: its byte range, when
// the chunk has plain keys, each once, and the content is a string.
func deltaContent(chunk []byte) (start, end int, ok bool) {
	s := jsonscan.New(chunk)
	// member finds key among the members of the object at the cursor, each key once, and
	// leaves the cursor at its value; the rest of the object is checked for duplicates.
	member := func(key string) (jsonscan.Scanner, bool) {
		if !s.BeginObject() {
			return s, false
		}
		var at jsonscan.Scanner
		found := false
		for {
			k, plain, more := s.Member()
			if !more {
				break
			}
			if !plain {
				return s, false
			}
			if string(k) == key {
				if found {
					return s, false
				}
				found, at = true, s
			}
			s.Skip()
		}
		return at, found && s.Err() == nil
	}
	var ok2 bool
	if s, ok2 = member("choices"); !ok2 || !s.BeginArray() || !s.Element() {
		return 0, 0, false
	}
	if s, ok2 = member("delta"); !ok2 {
		return 0, 0, false
	}
	if s, ok2 = member("content"); !ok2 || s.Peek() != jsonscan.String {
		return 0, 0, false
	}
	v := s.Skip()
	end = s.Offset()
	return end - len(v), end, v != nil
}

func setDeltaContentSlowly(chunk []byte, content string) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(chunk, &top); err != nil {
		return nil, err
	}
	var choices []map[string]json.RawMessage
	if err := json.Unmarshal(top["choices"], &choices); err != nil || len(choices) == 0 {
		return nil, errors.New("openai: the chunk has no choices")
	}
	delta := map[string]json.RawMessage{}
	if d := choices[0]["delta"]; d != nil {
		if err := json.Unmarshal(d, &delta); err != nil {
			return nil, err
		}
	}
	delta["content"], _ = json.Marshal(content)
	choices[0]["delta"], _ = json.Marshal(delta)
	top["choices"], _ = json.Marshal(choices)
	return json.Marshal(top)
}
