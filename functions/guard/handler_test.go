package guard

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/guard/detect"
	"github.com/trustplane/trustplane/functions/guard/policy"
)

const testAWSKey = "AKIAJ4Q2MZ7XK3P5RTLV"

func serve(t *testing.T, yaml string) string {
	t.Helper()
	tab := policy.Builtin()
	if yaml != "" {
		var err error
		if tab, err = policy.Parse([]byte(yaml)); err != nil {
			t.Fatal(err)
		}
	}
	checks := &policy.Checks{Scanner: detect.Default(detect.Options{HashKey: []byte("0123456789abcdef")}), Policies: policy.Fixed(tab)}
	h := NewHandler(checks, slog.New(slog.DiscardHandler), nil)
	mux := http.NewServeMux()
	mux.Handle("POST /", h)
	mux.HandleFunc("GET /policy", h.ServePolicy)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func delivery(id, typ, data string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("/ingest")
	e.SetType(typ)
	_ = e.SetData(cloudevents.ApplicationJSON, []byte(data))
	e.SetExtension(catalog.ExtTenant, "acme")
	e.SetExtension(catalog.ExtProject, "web")
	e.SetExtension(catalog.ExtKeyID, "k1")
	e.SetExtension(catalog.ExtIngestTime, "2026-11-29T10:00:01Z")
	e.SetExtension(catalog.ExtPartitionKey, "trace-1")
	return e
}

// deliver posts e as the broker does (binary mode) and returns the reply, if any, and the status.
func deliver(t *testing.T, url string, e cloudevents.Event) (*cloudevents.Event, int, string) {
	t.Helper()
	c, err := cloudevents.NewClientHTTP()
	if err != nil {
		t.Fatal(err)
	}
	reply, res := c.Request(cloudevents.ContextWithTarget(context.Background(), url), e)
	var hr *cehttp.Result
	if !cloudevents.ResultAs(res, &hr) {
		t.Fatalf("result %v", res)
	}
	return reply, hr.StatusCode, hr.Error()
}

const observation = `{"id":"obs-1","trace_id":"trace-1","type":"GENERATION","start_time":"2026-11-29T10:00:00Z","model":"gpt-4o",
	"input":[{"role":"user","content":"deploy with key ` + testAWSKey + ` please"}],"output":"Mail jane.doe@acme-corp.com when done."}`

func TestFindingsAreTheReply(t *testing.T) {
	url := serve(t, "")
	reply, status, _ := deliver(t, url, delivery("evt-1", catalog.TypeObservation, observation))
	if status != 200 || reply == nil {
		t.Fatalf("status %d, reply %v", status, reply)
	}
	if reply.Type() != catalog.TypeFinding || reply.Source() != EventSource || reply.ID() != "evt-1/findings" {
		t.Errorf("reply %s %s %s", reply.Type(), reply.Source(), reply.ID())
	}
	ext := reply.Extensions()
	if ext[catalog.ExtTenant] != "acme" || ext[catalog.ExtProject] != "web" || ext[catalog.ExtKeyID] != "k1" ||
		ext[catalog.ExtPartitionKey] != "trace-1" || ext[catalog.ExtIngestTime] == nil {
		t.Errorf("extensions %v", ext)
	}
	ct, _ := catalog.Lookup(catalog.TypeFinding)
	p, problems := ct.Decode(reply.Data())
	if len(problems) > 0 {
		t.Fatalf("%v: %s", problems, reply.Data())
	}
	f := p.(*catalog.Findings)
	if f.SourceType != catalog.TypeObservation || f.SourceID != "obs-1" || f.SourceEventID != "evt-1" || f.TraceID != "trace-1" || len(f.Findings) != 2 {
		t.Fatalf("findings %+v", f)
	}
	key, email := f.Findings[0], f.Findings[1]
	in := Text(json.RawMessage(`[{"role":"user","content":"deploy with key ` + testAWSKey + ` please"}]`))
	if key.Detector != "secret.aws_access_key" || key.Side != catalog.SideInput || key.Action != catalog.ActionObserve || in[key.Start:key.End] != testAWSKey {
		t.Errorf("key finding %+v in %q", key, in)
	}
	out := "Mail jane.doe@acme-corp.com when done."
	if email.Detector != "pii.email" || email.Side != catalog.SideOutput || out[email.Start:email.End] != "jane.doe@acme-corp.com" {
		t.Errorf("email finding %+v", email)
	}
	if strings.Contains(string(reply.Data()), testAWSKey) || strings.Contains(string(reply.Data()), "jane.doe@") {
		t.Errorf("the reply holds a matched value: %s", reply.Data())
	}
	// A redelivery gets the same reply.
	again, _, _ := deliver(t, url, delivery("evt-1", catalog.TypeObservation, observation))
	if again == nil || again.ID() != reply.ID() || string(again.Data()) != string(reply.Data()) {
		t.Errorf("redelivery replied %v", again)
	}
}

func TestNothingToReportIsAPlainAcknowledgement(t *testing.T) {
	url := serve(t, `rules: [{tenant: quiet, sides: none}]`)
	clean := `{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z","input":{"q":"what is the weather?"}}`
	if reply, status, _ := deliver(t, url, delivery("e1", catalog.TypeObservation, clean)); status != 200 || reply != nil {
		t.Errorf("clean: %d %v", status, reply)
	}
	quiet := delivery("e2", catalog.TypeObservation, observation)
	quiet.SetExtension(catalog.ExtTenant, "quiet")
	if reply, status, _ := deliver(t, url, quiet); status != 200 || reply != nil {
		t.Errorf("policy off: %d %v", status, reply)
	}
	// An LLM call router checked inline carries its findings already.
	call := `{"id":"c","timestamp":"2026-11-29T10:00:00Z","endpoint":"chat.completions","model_requested":"m","status":"success","status_code":200,` +
		`"latency":{"total_ms":1,"gateway_ms":0,"provider_ms":1},"input":"key ` + testAWSKey + `","guard":{"outcome":"allowed"}}`
	if reply, status, _ := deliver(t, url, delivery("e3", catalog.TypeLLMCall, call)); status != 200 || reply != nil {
		t.Errorf("checked inline: %d %v", status, reply)
	}
	unchecked := strings.Replace(call, `,"guard":{"outcome":"allowed"}`, "", 1)
	if reply, status, _ := deliver(t, url, delivery("e4", catalog.TypeLLMCall, unchecked)); status != 200 || reply == nil {
		t.Errorf("a call router did not check: %d %v", status, reply)
	}
}

func TestEventsGuardCannotReadAreRefusedWithTheReason(t *testing.T) {
	url := serve(t, "")
	noTenant := delivery("e1", catalog.TypeObservation, observation)
	noTenant.SetExtension(catalog.ExtTenant, nil)
	for name, c := range map[string]struct {
		e    cloudevents.Event
		want string
	}{
		"bad data":     {delivery("e2", catalog.TypeObservation, `{"id":"o","trace_id":"t"`), "not the expected JSON"},
		"unknown type": {delivery("e3", "com.example.x", `{}`), "not telemetry guard checks"},
		"a score":      {delivery("e4", catalog.TypeScore, `{"id":"s","trace_id":"t","name":"n","timestamp":"2026-11-29T10:00:00Z"}`), "carries no text"},
		"a finding":    {delivery("e5", catalog.TypeFinding, `{}`), "not telemetry"},
		"no tenant":    {noTenant, "tenantid"},
	} {
		// Structured mode, to read the answer's body: the reason the broker dead-letters with.
		body, _ := json.Marshal(c.e)
		resp, err := http.Post(url, "application/cloudevents+json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), c.want) {
			t.Errorf("%s: %d %q", name, resp.StatusCode, msg)
		}
	}
}

func TestPolicyEndpoint(t *testing.T) {
	url := serve(t, `rules: [{tenant: acme, project: web, actions: {pii: observe}}]`)
	resp, err := http.Get(url + "/policy?tenant=acme&project=web&model=gpt-4o")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var got struct{ Policy policy.Policy }
	if resp.StatusCode != 200 || json.Unmarshal(body, &got) != nil || got.Policy.Actions["pii"] != policy.Observe || got.Policy.Actions["secret"] != policy.Block {
		t.Errorf("%d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(url + "/policy?project=web")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a project without its tenant: %d", resp.StatusCode)
	}
}

func TestTextIsTheStringValuesJoined(t *testing.T) {
	for raw, want := range map[string]string{
		`"a \"quoted\"\nline"`: "a \"quoted\"\nline",
		`[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"text","text":"yo"}]}]`: "user\nhi\nassistant\ntext\nyo",
		`{"n":1,"b":true,"z":null,"s":"x"}`: "x",
		`42`:                                "",
	} {
		if got := Text(json.RawMessage(raw)); got != want {
			t.Errorf("%s: %q, want %q", raw, got, want)
		}
	}
}

func FuzzText(f *testing.F) {
	f.Add([]byte(observation))
	f.Add([]byte(`"x"`))
	f.Add([]byte(`[[[[`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := Text(raw)
		if json.Valid(raw) && utf8.Valid(raw) && !utf8.ValidString(got) {
			t.Fatalf("invalid UTF-8 from valid JSON %q", raw)
		}
		if len(got) > 3*len(raw) { // an invalid byte becomes U+FFFD, three bytes
			t.Fatalf("text of %d bytes from %d", len(got), len(raw))
		}
	})
}

func TestFindingEventIsDeterministic(t *testing.T) {
	src := delivery("evt-9", catalog.TypeObservation, observation)
	s, err := read(src.Type(), src.Data())
	if err != nil {
		t.Fatal(err)
	}
	fs := []catalog.Finding{{Detector: "pii.email", Category: "pii", Entity: "EMAIL", Severity: "medium", Score: 0.9, Start: 1, End: 5, Preview: "x", Action: "observe", Side: "input"}}
	a, err := findingEvent(src, s, fs)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := findingEvent(src, s, fs)
	if a.ID() != b.ID() || !reflect.DeepEqual(a.Data(), b.Data()) {
		t.Error("two finding events of one delivery differ")
	}
}
