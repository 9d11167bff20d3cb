package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/router/openai"
	"github.com/trustplane/trustplane/functions/router/providers"
)

// CodeContentPolicy is the error code of a request or response the policy blocked.
const CodeContentPolicy = "content_policy_violation"

// Guard runs guard's detectors inline on router's calls, as the policy of the call's tenant,
// project and model says: block, mask or observe, on the request, the response, or both.
type Guard struct {
	checks   *policy.Checks
	findings *prometheus.CounterVec
	outcomes *prometheus.CounterVec
	seconds  prometheus.Histogram
}

// NewGuard returns the inline checks of checks; reg may be nil.
func NewGuard(checks *policy.Checks, reg prometheus.Registerer) *Guard {
	g := &Guard{checks: checks,
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "guard_findings_total",
			Help: "Findings of the inline checks acted on, by category, action and side."}, []string{"category", "action", "side"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "trustplane", Subsystem: "router", Name: "guard_calls_total",
			Help: "Calls the inline checks ran on, by outcome (allowed, masked, blocked, error_open, error_closed)."}, []string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "trustplane", Subsystem: "router", Name: "guard_seconds",
			Help:    "Time the inline checks took per call (request and response sides together).",
			Buckets: []float64{.00002, .00005, .0001, .00025, .0005, .001, .0025, .01}}),
	}
	if reg != nil {
		reg.MustRegister(g.findings, g.outcomes, g.seconds)
	}
	return g
}

// callGuard is the checks' state for one call.
type callGuard struct {
	g       *Guard
	policy  *policy.Policy
	masker  *detect.Masker // values masked in the request, for Restore
	elapsed time.Duration
	rec     *catalog.LLMGuard
	failed  bool // a check failed and the policy fails open
}

// guardFor starts the checks of a call, or returns nil when no policy acts on it.
func (g *Guard) guardFor(c *call, model string) *callGuard {
	if g == nil {
		return nil
	}
	p := g.checks.Policies.Get().Resolve(c.principal.Tenant, c.principal.Project, model)
	if !p.Active() {
		return nil
	}
	c.ev.Guard.Outcome = catalog.GuardAllowed
	return &callGuard{g: g, policy: p, rec: &c.ev.Guard}
}

// finish completes the call's guard record and counts it; the call's event carries it.
func (cg *callGuard) finish() {
	if cg == nil {
		return
	}
	cg.rec.LatencyMs = ms(cg.elapsed)
	cg.g.seconds.Observe(cg.elapsed.Seconds())
	cg.g.outcomes.WithLabelValues(cg.rec.Outcome).Inc()
}

// outcome raises the call's outcome: blocked over masked over an error over allowed.
func (cg *callGuard) outcome(o string) {
	rank := map[string]int{catalog.GuardAllowed: 0, catalog.GuardErrorOpen: 1, catalog.GuardMasked: 2, catalog.GuardBlocked: 3}
	if rank[o] > rank[cg.rec.Outcome] {
		cg.rec.Outcome = o
	}
}

// record adds a finding acted on to the call's record.
func (cg *callGuard) record(f detect.Finding, a policy.Action, side string, truncated bool) {
	cg.g.findings.WithLabelValues(string(f.Category), string(a), side).Inc()
	if len(cg.rec.Findings) < catalog.MaxFindings {
		cg.rec.Findings = append(cg.rec.Findings, policy.Record(f, a, side, truncated))
	}
}

// scan runs the scanner, turning a detector's panic into an error.
func (cg *callGuard) scan(text string) (res detect.Result, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("a detector failed: %v", p)
		}
	}()
	return cg.g.checks.Scanner.Scan(text), nil
}

// fail handles a check that could not run: with on_error open the call goes on unchecked and
// the record says so; closed, it is refused (the error to answer).
func (cg *callGuard) fail(err error) *openai.APIError {
	if cg.policy.OnError == policy.FailClosed {
		cg.rec.Outcome = catalog.GuardBlocked
		cg.g.outcomes.WithLabelValues("error_closed").Inc()
		return &openai.APIError{Status: http.StatusServiceUnavailable, Type: openai.TypeUnavailable, Code: "content_check_failed",
			Message: "the content checks could not run and the policy fails closed; retry later"}
	}
	cg.failed = true
	cg.outcome(catalog.GuardErrorOpen)
	return nil
}

// blocked is the error a block answers with: it names the categories and detectors, never the
// matched text.
func blocked(what string, fs []detect.Finding) *openai.APIError {
	var names []string
	seen := map[string]bool{}
	for _, f := range fs {
		n := categoryName(f.Category) + " (" + f.Detector + ")"
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return &openai.APIError{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Code: CodeContentPolicy,
		Message: fmt.Sprintf("the %s was blocked by the content policy: it contains %s", what, strings.Join(names, ", "))}
}

func categoryName(c detect.Category) string {
	switch c {
	case detect.CategoryPII:
		return "personal data"
	case detect.CategorySecret:
		return "a secret"
	case detect.CategoryInjection:
		return "a prompt injection"
	case detect.CategoryJailbreak:
		return "a jailbreak attempt"
	}
	return string(c)
}

// segment is one text of a side: message msg's text part part, at offset start of the side's
// text (the texts joined by newlines).
type segment struct {
	msg, part, start int
	text             string
	trusted          bool // written by the application (system, developer): not checked for injections
}

func joinSegments(segs []segment) string {
	var b strings.Builder
	for i := range segs {
		if i > 0 {
			b.WriteByte('\n')
		}
		segs[i].start = b.Len()
		b.WriteString(segs[i].text)
	}
	return b.String()
}

// segmentOf is the index of the segment holding offset, or -1 for a separator.
func segmentOf(segs []segment, off int) int {
	for i := len(segs) - 1; i >= 0; i-- {
		if off >= segs[i].start {
			if off < segs[i].start+len(segs[i].text) || len(segs[i].text) == 0 && off == segs[i].start {
				return i
			}
			return -1
		}
	}
	return -1
}

// checked is what a side's scan decided.
type checked struct {
	block, mask []detect.Finding
	truncated   bool
}

// decide applies the policy to a side's findings and records each one acted on.
func (cg *callGuard) decide(res detect.Result, segs []segment, side string) checked {
	var out checked
	out.truncated = res.Truncated
	for _, f := range res.Findings {
		if segs != nil && (f.Category == detect.CategoryInjection || f.Category == detect.CategoryJailbreak) {
			if i := segmentOf(segs, f.Start); i >= 0 && segs[i].trusted {
				continue
			}
		}
		a := cg.policy.Decide(f)
		if a == policy.Off {
			continue
		}
		cg.record(f, a, side, res.Truncated)
		switch a {
		case policy.Block:
			out.block = append(out.block, f)
		case policy.Mask:
			out.mask = append(out.mask, f)
		}
	}
	return out
}

// maskSegments masks fs (offsets in the side's text) in each segment, with the call's masker.
// It returns the new text of every segment that changed.
func (cg *callGuard) maskSegments(segs []segment, fs []detect.Finding) map[int]string {
	if cg.masker == nil {
		cg.masker = detect.NewMasker()
	}
	bySeg := map[int][]detect.Finding{}
	for _, f := range fs {
		i := segmentOf(segs, f.Start)
		if i < 0 {
			continue
		}
		s := segs[i]
		local := f
		local.Start, local.End = f.Start-s.start, min(f.End-s.start, len(s.text))
		bySeg[i] = append(bySeg[i], local)
	}
	out := map[int]string{}
	for i, local := range bySeg {
		out[i] = cg.masker.Mask(segs[i].text, local)
	}
	return out
}

// checkChat runs the request side of a chat call: it blocks (the error to answer) or masks the
// messages in req. The call's input for capture is taken after it.
func (cg *callGuard) checkChat(req *openai.ChatRequest) *openai.APIError {
	start := time.Now()
	defer func() { cg.elapsed += time.Since(start) }()
	if cg.policy.Response && req.Stream {
		if n := req.Raw("n"); n != nil && string(n) != "1" && string(n) != "null" {
			return &openai.APIError{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Param: "n",
				Message: "n other than 1 is not supported on streamed calls whose responses the content policy checks"}
		}
	}
	if !cg.policy.Request {
		return nil
	}
	var segs []segment
	for i, m := range req.Messages {
		for j, t := range openai.ContentTexts(m.Content) {
			segs = append(segs, segment{msg: i, part: j, text: t, trusted: m.Role == "system" || m.Role == "developer"})
		}
	}
	if len(segs) == 0 {
		return nil
	}
	res, err := cg.scan(joinSegments(segs))
	if err != nil {
		return cg.fail(err)
	}
	d := cg.decide(res, segs, catalog.SideRequest)
	if len(d.block) > 0 {
		cg.outcome(catalog.GuardBlocked)
		return blocked("request", d.block)
	}
	if len(d.mask) == 0 {
		return nil
	}
	masked := cg.maskSegments(segs, d.mask)
	contents := make([]json.RawMessage, len(req.Messages))
	for i, m := range req.Messages {
		var texts []string
		changed := false
		for k, s := range segs {
			if s.msg != i {
				continue
			}
			if t, ok := masked[k]; ok {
				texts, changed = append(texts, t), true
			} else {
				texts = append(texts, s.text)
			}
		}
		if !changed {
			continue
		}
		c, err := openai.ReplaceContentTexts(m.Content, texts)
		if err != nil {
			return cg.fail(err)
		}
		contents[i] = c
	}
	if err := req.SetContents(contents); err != nil {
		return cg.fail(err)
	}
	cg.outcome(catalog.GuardMasked)
	return nil
}

// checkEmbeddings runs the request side of an embeddings call.
func (cg *callGuard) checkEmbeddings(req *openai.EmbeddingRequest) *openai.APIError {
	start := time.Now()
	defer func() { cg.elapsed += time.Since(start) }()
	if !cg.policy.Request {
		return nil
	}
	texts, single := openai.EmbeddingTexts(req.Input)
	if len(texts) == 0 {
		return nil
	}
	segs := make([]segment, len(texts))
	for i, t := range texts {
		segs[i] = segment{msg: i, text: t}
	}
	res, err := cg.scan(joinSegments(segs))
	if err != nil {
		return cg.fail(err)
	}
	d := cg.decide(res, segs, catalog.SideRequest)
	if len(d.block) > 0 {
		cg.outcome(catalog.GuardBlocked)
		return blocked("request", d.block)
	}
	if len(d.mask) == 0 {
		return nil
	}
	for i, t := range cg.maskSegments(segs, d.mask) {
		texts[i] = t
	}
	var input []byte
	if single {
		input, _ = json.Marshal(texts[0])
	} else {
		input, _ = json.Marshal(texts)
	}
	req.SetInput(input)
	cg.outcome(catalog.GuardMasked)
	return nil
}

// restoring reports whether placeholders of the request go back into the answer.
func (cg *callGuard) restoring() bool {
	return cg.policy.Restore && cg.masker != nil && cg.masker.Len() > 0
}

// checkAnswer runs the response side of a non-streaming chat answer: it returns the body to
// send (masked, values restored), the answer's message for capture when it changed (masked,
// never restored), or the error to answer instead.
func (cg *callGuard) checkAnswer(body []byte) ([]byte, json.RawMessage, *openai.APIError) {
	if !cg.policy.Response && !cg.restoring() {
		return body, nil, nil
	}
	start := time.Now()
	defer func() { cg.elapsed += time.Since(start) }()
	// The texts are read in place; the answer is decoded whole only when it changes.
	reply, err := openai.ReadReply(body)
	if err != nil {
		return body, nil, nil // not a completion router can read; passed on as it came
	}
	var segs []segment
	for i, ch := range reply.Choices {
		var m struct {
			Content json.RawMessage `json:"content"`
		}
		if json.Unmarshal(ch.Message, &m) != nil {
			continue
		}
		for j, t := range openai.ContentTexts(m.Content) {
			segs = append(segs, segment{msg: i, part: j, text: t})
		}
	}
	if len(segs) == 0 {
		return body, nil, nil
	}
	decode := func() (map[string]json.RawMessage, []map[string]json.RawMessage, []map[string]json.RawMessage, bool) {
		var top map[string]json.RawMessage
		var choices []map[string]json.RawMessage
		if json.Unmarshal(body, &top) != nil || json.Unmarshal(top["choices"], &choices) != nil || len(choices) != len(reply.Choices) {
			return nil, nil, nil, false
		}
		msgs := make([]map[string]json.RawMessage, len(choices))
		for i, ch := range choices {
			_ = json.Unmarshal(ch["message"], &msgs[i])
		}
		return top, choices, msgs, true
	}
	masked := map[int]string{}
	if cg.policy.Response {
		res, err := cg.scan(joinSegments(segs))
		if err != nil {
			if e := cg.fail(err); e != nil {
				return nil, nil, e
			}
		} else {
			d := cg.decide(res, segs, catalog.SideResponse)
			if len(d.block) > 0 {
				cg.outcome(catalog.GuardBlocked)
				return nil, nil, blocked("response", d.block)
			}
			if len(d.mask) > 0 {
				masked = cg.maskSegments(segs, d.mask)
				cg.outcome(catalog.GuardMasked)
			}
		}
	}
	var capture json.RawMessage
	if len(masked) == 0 && !cg.restoring() {
		return body, nil, nil
	}
	top, choices, msgs, ok := decode()
	if !ok {
		if len(masked) > 0 {
			// Masked values must not go out: the answer is refused rather than passed on.
			if e := cg.fail(errors.New("the answer cannot be rewritten")); e != nil {
				return nil, nil, e
			}
		}
		return body, nil, nil
	}
	if len(masked) > 0 {
		b, ok := rebuildAnswer(top, choices, msgs, segs, masked)
		if !ok {
			if e := cg.fail(errors.New("the answer cannot be rewritten")); e != nil {
				return nil, nil, e
			}
			return body, nil, nil
		}
		capture = firstMessage(b)
		body = b
	}
	if cg.restoring() {
		restored := map[int]string{}
		for k, s := range segs {
			t, ok := masked[k]
			if !ok {
				t = s.text
			}
			if r := cg.masker.Restore(t); r != t || ok {
				restored[k] = r
			}
		}
		if b, ok := rebuildAnswer(top, choices, msgs, segs, restored); ok && len(restored) > 0 {
			body = b
		}
	}
	return body, capture, nil
}

// rebuildAnswer is a completion with the texts of segs replaced by changed (by segment
// index); ok is false when nothing changed or the answer cannot be rewritten.
func rebuildAnswer(top map[string]json.RawMessage, choices, msgs []map[string]json.RawMessage, segs []segment, changed map[int]string) ([]byte, bool) {
	if len(changed) == 0 {
		return nil, false
	}
	for i := range choices {
		var texts []string
		touched := false
		for k, s := range segs {
			if s.msg != i {
				continue
			}
			if t, ok := changed[k]; ok {
				texts, touched = append(texts, t), true
			} else {
				texts = append(texts, s.text)
			}
		}
		if !touched {
			continue
		}
		m := make(map[string]json.RawMessage, len(msgs[i]))
		for k, v := range msgs[i] {
			m[k] = v
		}
		c, err := openai.ReplaceContentTexts(m["content"], texts)
		if err != nil {
			return nil, false
		}
		m["content"] = c
		choices[i]["message"], _ = json.Marshal(m)
	}
	var err error
	if top["choices"], err = json.Marshal(choices); err != nil {
		return nil, false
	}
	out, err := json.Marshal(top)
	return out, err == nil
}

// streamGuard checks a streamed response chunk by chunk: the text is held back by
// detect.DefaultHold bytes so that a value is masked, or the stream ended, before any of it
// leaves; a value split across chunks is found by the stream scanner's look-back.
type streamGuard struct {
	cg       *callGuard
	sm       *detect.StreamMasker
	restorer *detect.Restorer
	template []byte // the last content chunk, for the chunk carrying the held-back rest
	restText string // the held-back rest, once released
	pending  string // text not yet handed to the stream scanner
	ended    bool
}

// streamBatch is the least text handed to the stream scanner at a time.
const streamBatch = 64

// streamGuard returns the checks of a streamed response, or nil when they have nothing to do.
func (cg *callGuard) streamGuard() *streamGuard {
	if cg == nil || !cg.policy.Response && !cg.restoring() {
		return nil
	}
	sg := &streamGuard{cg: cg}
	if cg.policy.Response {
		mask := func(f detect.Finding) bool { a := cg.policy.Decide(f); return a == policy.Mask || a == policy.Block }
		if cg.masker == nil {
			cg.masker = detect.NewMasker()
		}
		sg.sm = detect.NewStreamMasker(cg.g.checks.Scanner.Stream(0), cg.masker, 0, mask)
	}
	if cg.restoring() {
		sg.restorer = cg.masker.Restorer()
	}
	return sg
}

// pass returns the chunks' data to send for chunk (none, the chunk rewritten, or the held-back
// rest before a finishing chunk), or the error that ends the stream.
func (sg *streamGuard) pass(chunk *providers.Chunk) ([][]byte, error) {
	start := time.Now()
	defer func() { sg.cg.elapsed += time.Since(start) }()
	if chunk.UsageOnly {
		return [][]byte{chunk.Data}, nil
	}
	if chunk.Text == "" {
		if !finishes(chunk.Data) {
			return [][]byte{chunk.Data}, nil
		}
		rest, err := sg.close()
		if err != nil {
			return nil, err
		}
		if rest == nil {
			return [][]byte{chunk.Data}, nil
		}
		chunk.Text = sg.restText
		return [][]byte{rest, chunk.Data}, nil
	}
	text, client, err := sg.write(chunk.Text)
	if err != nil {
		return nil, err
	}
	sg.template = chunk.Data
	if mayFinish(chunk.Data) && finishes(chunk.Data) {
		// The last text and the finish reason in one chunk: the held-back rest goes with it.
		rest, restClient, err := sg.closeText()
		if err != nil {
			return nil, err
		}
		text, client = text+rest, client+restClient
	}
	data, rerr := openai.SetDeltaContent(chunk.Data, client)
	if rerr != nil {
		// A chunk router cannot rewrite must not go out unchecked.
		if e := sg.cg.fail(rerr); e != nil {
			return nil, e
		}
		return nil, nil
	}
	chunk.Text = text
	return [][]byte{data}, nil
}

// end returns the chunk carrying the held-back rest of a stream that ended without a
// finishing chunk.
func (sg *streamGuard) end() ([]byte, error) {
	return sg.close()
}

// write returns the text released for chunk, masked (for capture) and as the client gets
// it (placeholders restored, when the policy says so).
func (sg *streamGuard) write(text string) (masked, client string, err error) {
	if sg.sm != nil {
		// The stream scanner rescans its look-back with every write: a token at a time that is
		// a scan per token. Text is handed to it in pieces of streamBatch bytes or more; it
		// holds back more than that anyway.
		sg.pending += text
		if len(sg.pending) < streamBatch {
			return "", "", nil
		}
		text, sg.pending = sg.pending, ""
		released, fs := sg.sm.Write(text)
		if err := sg.findings(fs); err != nil {
			return "", "", err
		}
		text = released
	}
	client = text
	if sg.restorer != nil {
		client = sg.restorer.Write(text)
	}
	return text, client, nil
}

func (sg *streamGuard) close() ([]byte, error) {
	rest, client, err := sg.closeText()
	if err != nil {
		return nil, err
	}
	if client == "" || sg.template == nil {
		return nil, nil
	}
	sg.restText = rest
	return openai.SetDeltaContent(sg.template, client)
}

// closeText ends the stream's checks and returns the text they held back, masked and as the
// client gets it.
func (sg *streamGuard) closeText() (masked, client string, err error) {
	if sg.ended {
		return "", "", nil
	}
	sg.ended = true
	if sg.sm != nil {
		released, fs := sg.sm.Write(sg.pending)
		sg.pending = ""
		if err := sg.findings(fs); err != nil {
			return "", "", err
		}
		r, fs := sg.sm.Close()
		r = released + r
		if err := sg.findings(fs); err != nil {
			return "", "", err
		}
		masked = r
	}
	client = masked
	if sg.restorer != nil {
		client = sg.restorer.Write(masked) + sg.restorer.Flush()
	}
	return masked, client, nil
}

// findings decides on a stream's new findings; a block ends the stream.
func (sg *streamGuard) findings(fs []detect.Finding) error {
	d := sg.cg.decide(detect.Result{Findings: fs}, nil, catalog.SideResponse)
	if len(d.block) > 0 {
		sg.cg.outcome(catalog.GuardBlocked)
		return blocked("response", d.block)
	}
	if len(d.mask) > 0 {
		sg.cg.outcome(catalog.GuardMasked)
	}
	return nil
}

// mayFinish is a cheap test before finishes: a chunk without a finish reason says
// "finish_reason":null, or nothing.
func mayFinish(data []byte) bool {
	i := bytes.Index(data, []byte(`"finish_reason"`))
	return i >= 0 && !bytes.HasPrefix(bytes.TrimLeft(data[i+len(`"finish_reason"`):], " :"), []byte("null"))
}

// finishes reports whether a chunk carries a finish reason.
func finishes(data []byte) bool {
	var r struct {
		Choices []struct {
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
	}
	if json.Unmarshal(data, &r) != nil {
		return false
	}
	for _, c := range r.Choices {
		if c.FinishReason != nil && *c.FinishReason != "" {
			return true
		}
	}
	return false
}
