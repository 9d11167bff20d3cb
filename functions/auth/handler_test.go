package auth

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// post sends a structured-mode CloudEvent body and returns status and body.
func post(t *testing.T, url, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(url, "application/cloudevents+json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func verifyEvent(typ, data string) string {
	return `{"specversion":"1.0","id":"1","source":"/test","type":"` + typ +
		`","datacontenttype":"application/json","data":` + data + `}`
}

// request sends a verify request through the CloudEvents client and decodes the reply.
func request(t *testing.T, url string, req authclient.VerifyRequest) (string, json.RawMessage) {
	t.Helper()
	c, err := cloudevents.NewClientHTTP(cloudevents.WithTarget(url))
	if err != nil {
		t.Fatal(err)
	}
	ev := cloudevents.NewEvent()
	ev.SetID("req-1")
	ev.SetSource("/test")
	ev.SetType(authclient.VerifyType)
	if err := ev.SetData(cloudevents.ApplicationJSON, req); err != nil {
		t.Fatal(err)
	}
	reply, res := c.Request(context.Background(), ev)
	if !cloudevents.IsACK(res) || reply == nil {
		t.Fatalf("request: %v, reply %v", res, reply)
	}
	if reply.Extensions()["requestid"] != "req-1" || reply.Source() != EventSource {
		t.Errorf("reply attributes: %v", reply)
	}
	return reply.Type(), reply.Data()
}

func TestHandlerVerifiedAndDenied(t *testing.T) {
	e := newEnv(t)
	key, rec := e.addKey(t, "acme", authclient.ScopeIngest)
	revokedKey, revoked := e.addKey(t, "acme", authclient.ScopeIngest)
	e.revoke(t, revoked.ID)
	unknown, unknownID, _ := authclient.GenerateKey()

	typ, data := request(t, e.server.URL, authclient.VerifyRequest{Key: key, Scope: authclient.ScopeIngest})
	var p authclient.Principal
	if err := json.Unmarshal(data, &p); err != nil || typ != authclient.VerifiedType {
		t.Fatalf("verified: %s %s %v", typ, data, err)
	}
	if p.KeyID != rec.ID || p.Tenant != "acme" || p.Project != "web" || len(p.Scopes) != 1 {
		t.Fatalf("principal %+v", p)
	}

	for _, c := range []struct {
		key    string
		scope  authclient.Scope
		reason authclient.Reason
		keyID  string
	}{
		{key, authclient.ScopeQuery, authclient.ReasonMissingScope, rec.ID},
		{unknown, authclient.ScopeIngest, authclient.ReasonUnknownKey, unknownID},
		{revokedKey, authclient.ScopeIngest, authclient.ReasonRevoked, revoked.ID},
		{"not-a-key", authclient.ScopeIngest, authclient.ReasonMalformed, ""},
	} {
		typ, data := request(t, e.server.URL, authclient.VerifyRequest{Key: c.key, Scope: c.scope})
		var d authclient.Denial
		if err := json.Unmarshal(data, &d); err != nil || typ != authclient.DeniedType {
			t.Fatalf("%s: %s %s %v", c.reason, typ, data, err)
		}
		if d.Reason != c.reason || d.KeyID != c.keyID || d.Message == "" {
			t.Errorf("denial %+v, want reason %s key id %q", d, c.reason, c.keyID)
		}
	}

	// Every key crossed the handler and the store: none may appear in the logs.
	logs := e.logs.String()
	for _, k := range []string{key, revokedKey, unknown} {
		if strings.Contains(logs, k) || strings.Contains(logs, k[12:]) {
			t.Fatalf("a key appears in the logs:\n%s", logs)
		}
	}
	if !strings.Contains(logs, revoked.ID) {
		t.Fatalf("key ids should be logged:\n%s", logs)
	}
}

func TestHandlerMalformedRequests(t *testing.T) {
	e := newEnv(t)
	key, _, _ := authclient.GenerateKey()
	for _, c := range []struct{ name, body, want string }{
		{"wrong type", verifyEvent("io.trustplane.other.v1", `{"key":"`+key+`","scope":"ingest"}`), "event type must be"},
		{"data not an object", verifyEvent(authclient.VerifyType, `"hello"`), "verify request data"},
		{"unknown field", verifyEvent(authclient.VerifyType, `{"key":"`+key+`","scope":"ingest","tenant":"x"}`), "unknown field"},
		{"key missing", verifyEvent(authclient.VerifyType, `{"scope":"ingest"}`), "key is required"},
		{"scope unknown", verifyEvent(authclient.VerifyType, `{"key":"`+key+`","scope":"admin"}`), "scope must be one of"},
		{"no data", `{"specversion":"1.0","id":"1","source":"/t","type":"` + authclient.VerifyType + `"}`, "data is missing"},
		{"not a cloudevent", `{"hello":"world"}`, ""},
	} {
		code, body := post(t, e.server.URL, c.body)
		if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %q, want 400 containing %q", c.name, code, body, c.want)
		}
		if strings.Contains(body, key[12:]) {
			t.Errorf("%s: answer echoes the key", c.name)
		}
	}
}

// Data after the request object is refused, whatever it is: a closing bracket too.
func TestParseVerifyRequestRefusesTrailingData(t *testing.T) {
	key, _, _ := authclient.GenerateKey()
	obj := `{"key":"` + key + `","scope":"ingest"}`
	if _, err := ParseVerifyRequest([]byte(" " + obj + "\n")); err != nil {
		t.Fatalf("well-formed request refused: %v", err)
	}
	for _, tail := range []string{"}", "]", " {}", ` "x"`, "1"} {
		if _, err := ParseVerifyRequest([]byte(obj + tail)); err == nil {
			t.Errorf("accepted trailing %q", tail)
		}
	}
}

// Field names match exactly and appear once: encoding/json alone matches names in any case and
// lets the last of two equal names win, so two readers of one request could disagree on its
// key or scope.
func TestParseVerifyRequestRefusesDuplicateOrMiscasedFields(t *testing.T) {
	key, _, _ := authclient.GenerateKey()
	for _, doc := range []string{
		`{"KEY":"` + key + `","scope":"ingest"}`,
		`{"key":"` + key + `","authclient.Scope":"ingest"}`,
		`{"key":"` + key + `","scope":"query","scope":"ingest"}`,
		`{"key":"` + key + `","scope":"query","SCOPE":"ingest"}`,
		`{"key":"tp_other","key":"` + key + `","scope":"ingest"}`,
	} {
		if r, err := ParseVerifyRequest([]byte(doc)); err == nil {
			t.Errorf("accepted %s as %+v", doc, r)
		} else if strings.Contains(err.Error(), key[12:]) {
			t.Errorf("error echoes the key: %v", err)
		}
	}
}
