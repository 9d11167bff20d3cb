package openai

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestContentTextsAndTheirReplacement(t *testing.T) {
	for _, c := range []struct {
		content string
		texts   []string
		with    []string
		want    string
	}{
		{`"mail me at a@b.io"`, []string{"mail me at a@b.io"}, []string{"mail me at <EMAIL_1>"}, `"mail me at \u003cEMAIL_1\u003e"`},
		{`[{"type":"text","text":"x"},{"type":"image_url","image_url":{"url":"u"}},{"type":"text","text":"y"}]`, []string{"x", "y"}, []string{"X", "Y"},
			`[{"text":"X","type":"text"},{"image_url":{"url":"u"},"type":"image_url"},{"text":"Y","type":"text"}]`},
	} {
		if got := ContentTexts(json.RawMessage(c.content)); !slices.Equal(got, c.texts) {
			t.Errorf("%s: texts %q", c.content, got)
		}
		got, err := ReplaceContentTexts(json.RawMessage(c.content), c.with)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: replaced %s, %v", c.content, got, err)
		}
	}
	if ContentTexts(json.RawMessage("null")) != nil {
		t.Error("null content has texts")
	}
	if _, err := ReplaceContentTexts(json.RawMessage(`"a"`), []string{"a", "b"}); err == nil {
		t.Error("two texts for a string")
	}
}

func TestSetContentsKeepsEverythingElse(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"system","content":"be nice"},{"name":"u","role":"user","content":"hi a@b.io" ,"x":1}]}`
	r, err := ParseChatRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetContents([]json.RawMessage{nil, json.RawMessage(`"hi <EMAIL_1>"`)}); err != nil {
		t.Fatal(err)
	}
	want := `[{"role":"system","content":"be nice"},{"name":"u","role":"user","content":"hi <EMAIL_1>" ,"x":1}]`
	if got := string(r.Raw("messages")); got != want {
		t.Errorf("messages %s", got)
	}
	if string(r.Messages[1].Content) != `"hi <EMAIL_1>"` {
		t.Errorf("message %s", r.Messages[1].Content)
	}
	fwd, _ := r.Forward(map[string]any{"model": "served"})
	if !strings.Contains(string(fwd), "<EMAIL_1>") || strings.Contains(string(fwd), "a@b.io") {
		t.Errorf("forwarded %s", fwd)
	}
	// An escaped key is refused rather than left unmasked.
	r2, err := ParseChatRequest([]byte(`{"model":"m","messages":[{"role":"user","\u0063ontent":"a@b.io"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.SetContents([]json.RawMessage{json.RawMessage(`"x"`)}); err == nil {
		t.Error("escaped content key replaced silently")
	}
}

// SetDeltaContent rewrites in place what it can and agrees with decoding and encoding again.
func TestSetDeltaContentInPlaceAgreesWithTheSlowPath(t *testing.T) {
	for _, chunk := range []string{
		`{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi \u00e9"},"finish_reason":null}],"usage":null}`,
		`{"choices":[{"delta":{"content":""}},{"delta":{"content":"second"}}]}`,
		`{"choices":[{"delta":{"content":"a","content":"b"}}]}`,
		`{"choices":[{"delta":{}}]}`,
		`{"choices":[{"delta":{"\u0063ontent":"a"}}]}`,
	} {
		fast, err := SetDeltaContent([]byte(chunk), "<EMAIL_1> ✓")
		if err != nil {
			t.Fatalf("%s: %v", chunk, err)
		}
		slow, err := setDeltaContentSlowly([]byte(chunk), "<EMAIL_1> ✓")
		if err != nil {
			t.Fatalf("%s: %v", chunk, err)
		}
		var a, b any
		if json.Unmarshal(fast, &a) != nil || json.Unmarshal(slow, &b) != nil {
			t.Fatalf("%s: %s / %s", chunk, fast, slow)
		}
		if ja, jb := mustMarshal(a), mustMarshal(b); ja != jb {
			t.Errorf("%s:\nfast %s\nslow %s", chunk, ja, jb)
		}
	}
	if _, _, ok := deltaContent([]byte(`{"choices":[{"delta":{"content":"a","content":"b"}}]}`)); ok {
		t.Error("a repeated content was rewritten in place")
	}
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// The in-place rewrite of a chunk agrees with decoding and encoding it again, whatever the
// chunk.
func FuzzSetDeltaContent(f *testing.F) {
	f.Add([]byte(`{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`), "<EMAIL_1>")
	f.Add([]byte(`{"choices":[{"delta":{"content":"a","content":"b"}}]}`), "x")
	f.Add([]byte(`{"choices":[{"delta":{"content":"\u00e9\n"}}],"choices":[]}`), "")
	f.Fuzz(func(t *testing.T, chunk []byte, content string) {
		if _, _, ok := deltaContent(chunk); !ok {
			return
		}
		fast, err := SetDeltaContent(chunk, content)
		if err != nil {
			t.Fatalf("in place: %v", err)
		}
		slow, err := setDeltaContentSlowly(chunk, content)
		if err != nil {
			return // encoding/json reads the chunk otherwise (invalid UTF-8, a bad number): not a chunk providers send
		}
		var a, b any
		if json.Unmarshal(fast, &a) != nil || json.Unmarshal(slow, &b) != nil {
			t.Fatalf("%q: %s / %s", chunk, fast, slow)
		}
		if ja, jb := mustMarshal(a), mustMarshal(b); ja != jb {
			t.Fatalf("%q:\nfast %s\nslow %s", chunk, ja, jb)
		}
	})
}
