package router

import (
	"strings"
	"testing"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
)

// BenchmarkContentChecks is the inline checks' own cost per call with the built-in policy: a
// 1 KiB prompt's request side and a completion's response side (make bench-guard).
func BenchmarkContentChecks(b *testing.B) {
	g := NewGuard(&policy.Checks{Scanner: detect.Default(detect.Options{}), Policies: policy.Fixed(policy.Builtin())}, nil)
	filler := "We reviewed the quarterly figures, and sales grew in every region while costs fell slightly.\n"
	body := `{"model":"gpt","messages":[{"role":"system","content":"You are brief."},{"role":"user","content":"` +
		strings.ReplaceAll(strings.Repeat(filler, 1024/len(filler)), "\n", `\n`) + `Say hello in five words."}]}`
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req, err := openai.ParseChatRequest([]byte(body))
		if err != nil {
			b.Fatal(err)
		}
		c := &call{}
		c.principal.Tenant = "t"
		cg := g.guardFor(c, "gpt")
		if e := cg.checkChat(req); e != nil {
			b.Fatal(e)
		}
		if _, _, e := cg.checkAnswer([]byte(openAICompletion)); e != nil {
			b.Fatal(e)
		}
		if c.ev.Guard.Outcome != catalog.GuardAllowed {
			b.Fatal(c.ev.Guard)
		}
	}
}

// BenchmarkStreamChecks is the response side of a streamed answer: seven chunks (a role chunk,
// five words, the finish) through the stream checks with the built-in policy.
func BenchmarkStreamChecks(b *testing.B) {
	g := NewGuard(&policy.Checks{Scanner: detect.Default(detect.Options{}), Policies: policy.Fixed(policy.Builtin())}, nil)
	var chunks [][]byte
	for i, w := range []string{"Hello", " there,", " nice", " to", " meet."} {
		role := ""
		if i == 0 {
			role = `"role":"assistant",`
		}
		chunks = append(chunks, []byte(`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{`+role+`"content":"`+w+`"},"finish_reason":null}],"usage":null}`))
	}
	chunks = append(chunks, []byte(`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`))
	texts := []string{"Hello", " there,", " nice", " to", " meet.", ""}
	b.ReportAllocs()
	for b.Loop() {
		c := &call{}
		c.principal.Tenant = "t"
		sg := g.guardFor(c, "gpt").streamGuard()
		for i, data := range chunks {
			ch := providers.Chunk{Data: data, Text: texts[i]}
			if _, err := sg.pass(&ch); err != nil {
				b.Fatal(err)
			}
		}
	}
}
