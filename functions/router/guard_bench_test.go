package router

import (
	"strings"
	"testing"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/router/openai"
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
