package runtime

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

func TestCloudEventsHandler(t *testing.T) {
	h := CloudEventsHandler(func(_ context.Context, e cloudevents.Event) (*cloudevents.Event, cloudevents.Result) {
		switch e.Type() {
		case "reply":
			r := cloudevents.NewEvent()
			r.SetID("r-" + e.ID())
			r.SetSource("/test")
			r.SetType("answer")
			return &r, nil
		case "refuse":
			return nil, Status(http.StatusBadRequest, "refused %s", e.ID())
		case "fail":
			return nil, errors.New("broken")
		}
		return nil, Status(http.StatusOK, "")
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(header map[string]string, body string) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	binary := func(typ string) map[string]string {
		return map[string]string{"Ce-Specversion": "1.0", "Ce-Id": "1", "Ce-Source": "/s", "Ce-Type": typ, "Content-Type": "application/json"}
	}
	if resp, _ := post(binary("ok"), `{}`); resp.StatusCode != 200 {
		t.Errorf("ok: %d", resp.StatusCode)
	}
	if resp, _ := post(binary("reply"), `{}`); resp.StatusCode != 200 || resp.Header.Get("Ce-Id") != "r-1" || resp.Header.Get("Ce-Type") != "answer" {
		t.Errorf("reply: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := post(binary("refuse"), `{}`); resp.StatusCode != 400 || !strings.Contains(body, "refused 1") {
		t.Errorf("refuse: %d %q", resp.StatusCode, body)
	}
	if resp, body := post(binary("fail"), `{}`); resp.StatusCode != 500 || !strings.Contains(body, "broken") {
		t.Errorf("fail: %d %q", resp.StatusCode, body)
	}
	if resp, _ := post(map[string]string{"Content-Type": "application/cloudevents+json"},
		`{"specversion":"1.0","id":"2","source":"/s","type":"reply"}`); resp.Header.Get("Ce-Id") != "r-2" {
		t.Errorf("structured: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, body := post(map[string]string{"Content-Type": "application/json"}, `{}`); resp.StatusCode != 400 || !strings.Contains(body, "CloudEvent") {
		t.Errorf("not an event: %d %q", resp.StatusCode, body)
	}
	if resp, _ := post(map[string]string{"Ce-Specversion": "1.0", "Ce-Source": "/s", "Ce-Type": "ok"}, `{}`); resp.StatusCode != 400 {
		t.Errorf("event without id: %d", resp.StatusCode)
	}
}
