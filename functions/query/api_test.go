package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/auth/authclient"
	"github.com/trustplane/trustplane/functions/auth/authtest"
)

// api is the query API over the test server, connected as the read-only user, with keys of
// two tenants that share a project name and every id.
type api struct {
	srv           *httptest.Server
	h             *Handler
	keyA, keyB    string
	ingestOnly    string
	revoked       string
	openapi       validator.Validator
	t             *testing.T
	start, end    time.Time
	tenantA, tenB string
}

const apiProject = "shared-project"

func newAPI(t *testing.T, limits Limits, seed uint64) *api {
	t.Helper()
	s := store(t)
	ro, err := clickhouse.Open(context.Background(), clickhouse.Config{Addr: server.Addr(), User: "query"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ro.Close() })
	a := &api{t: t, tenantA: fmt.Sprintf("tenant-a-%d", seed), tenB: fmt.Sprintf("tenant-b-%d", seed),
		start: time.Date(2026, 10, 5, 0, 0, 0, 0, time.UTC)}
	a.end = a.start.Add(48 * time.Hour)
	file := authtest.New(t)
	add := func(tenant string, scopes ...authclient.Scope) string {
		k, _ := file.Add(auth.NewKey{Tenant: tenant, Project: apiProject, Scopes: scopes})
		return k
	}
	a.keyA = add(a.tenantA, authclient.ScopeQuery)
	a.keyB = add(a.tenB, authclient.ScopeQuery, authclient.ScopeIngest)
	a.ingestOnly = add(a.tenantA, authclient.ScopeIngest)
	var rec auth.Record
	a.revoked, rec = file.Add(auth.NewKey{Tenant: a.tenantA, Project: apiProject, Scopes: []authclient.Scope{authclient.ScopeQuery}})
	file.Revoke(rec.ID)
	r := newReader(ro.Conn(), clickhouse.DefaultDatabase, ro.Features(), limits)
	if err := r.refreshFindings(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.h = NewHandler(file.Store(), r, HandlerOptions{Limits: limits})
	a.srv = httptest.NewServer(a.h)
	t.Cleanup(a.srv.Close)
	doc, err := libopenapi.NewDocument(openAPIJSON)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		t.Fatalf("openapi document: %v", verrs)
	}
	a.openapi = v
	// Both tenants get the same ids; tenant B's names and users carry "B-secret".
	for i, tenant := range []string{a.tenantA, a.tenB} {
		rng := rand.New(rand.NewPCG(seed, 1))
		b := clickhouse.Batch{
			LLMCalls:     genCalls(rng, tenant, apiProject, a.start, 48, 300),
			Observations: genObservations(rng, tenant, apiProject, a.start, 48, 400),
		}
		for j := 0; j < 100; j++ {
			b.Traces = append(b.Traces, clickhouse.Trace{
				Envelope:  clickhouse.Envelope{TenantID: tenant, ProjectID: apiProject, ID: fmt.Sprintf("trace-%d", j), Version: 1, Metadata: map[string]string{"k": tenant}},
				Timestamp: a.start.Add(time.Duration(j) * 17 * time.Minute), Name: fmt.Sprintf("%s-name-%d", []string{"A", "B-secret"}[i], j%5),
				UserID: fmt.Sprintf("user-%d", j%3), Tags: []string{"t" + fmt.Sprint(j%2)}, Environment: "prod",
			})
			b.Scores = append(b.Scores, clickhouse.Score{
				Envelope: clickhouse.Envelope{TenantID: tenant, ProjectID: apiProject, ID: fmt.Sprintf("score-%d", j), Version: 1},
				TraceID:  fmt.Sprintf("trace-%d", j), Name: "quality", Value: float64(i*100 + j), DataType: clickhouse.DataTypeNumeric,
				Source: clickhouse.SourceAPI, Timestamp: a.start.Add(time.Duration(j) * 13 * time.Minute),
			})
		}
		for j := 0; j < 60; j++ {
			b.Findings = append(b.Findings, clickhouse.Finding{TenantID: tenant, ProjectID: apiProject, SourceType: "observation",
				SourceID: fmt.Sprintf("obs-%d", j), TraceID: fmt.Sprintf("trace-%d", j/2), Timestamp: a.start.Add(time.Duration(j) * 31 * time.Minute),
				Side: "input", Detector: "secret.aws_access_key", Category: "secret", Severity: []string{"high", "low"}[j%2], Score: 0.9,
				SpanStart: uint32(j), SpanEnd: uint32(j + 20), Preview: []string{"AKIA****", "B-secret"}[i], Action: "observe", Version: 1})
		}
		if i == 1 {
			for k := range b.LLMCalls {
				b.LLMCalls[k].UserID = "B-secret"
			}
			for k := range b.Observations {
				b.Observations[k].Name = "B-secret"
			}
		}
		write(t, s, b)
	}
	return a
}

// do sends a request, checks it and its answer against the OpenAPI document, and returns the
// answer's status and body.
func (a *api) do(method, path, key, body string) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	// The validator reads the bodies again.
	vreq, _ := http.NewRequest(method, "http://query.test"+path, strings.NewReader(body))
	vreq.Header = req.Header.Clone()
	vresp := &http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(got)), Request: vreq}
	if resp.StatusCode < 400 {
		if ok, errs := a.openapi.ValidateHttpRequest(vreq); !ok {
			a.t.Fatalf("%s %s: the request does not match the OpenAPI document: %v", method, path, verrs(errs))
		}
		vreq.Body = io.NopCloser(strings.NewReader(body))
	}
	// A path the API does not serve is not in the document either: only its problem is checked.
	if _, pattern := a.h.mux.Handler(req); pattern == "/" {
		if resp.StatusCode != 404 {
			a.t.Fatalf("%s %s: %d off the API", method, path, resp.StatusCode)
		}
	} else if ok, errs := a.openapi.ValidateHttpResponse(vreq, vresp); !ok {
		a.t.Fatalf("%s %s: the answer (%d) does not match the OpenAPI document: %v\n%s", method, path, resp.StatusCode, verrs(errs), got)
	}
	if resp.StatusCode >= 400 && resp.Header.Get("Content-Type") != contentTypeProblem {
		a.t.Fatalf("%s %s: %d answered as %s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, got
}

func verrs[E error](errs []E) string {
	var parts []string
	for _, e := range errs {
		parts = append(parts, e.Error())
	}
	return strings.Join(parts, "; ")
}

func (a *api) rangeQ() string {
	return "from=" + url.QueryEscape(a.start.Format(time.RFC3339)) + "&to=" + url.QueryEscape(a.end.Format(time.RFC3339))
}

// pages follows next_cursor from path to the end and returns every row.
func (a *api) pages(path, key string) []map[string]any {
	a.t.Helper()
	var all []map[string]any
	next := path
	for n := 0; ; n++ {
		status, body := a.do("GET", next, key, "")
		if status != 200 {
			a.t.Fatalf("GET %s: %d %s", next, status, body)
		}
		var pg struct {
			Data       []map[string]any `json:"data"`
			NextCursor string           `json:"next_cursor"`
		}
		if err := json.Unmarshal(body, &pg); err != nil {
			a.t.Fatal(err)
		}
		all = append(all, pg.Data...)
		if pg.NextCursor == "" {
			return all
		}
		if n > 1000 {
			a.t.Fatalf("GET %s: more than 1000 pages", path)
		}
		next = path + "&cursor=" + url.QueryEscape(pg.NextCursor)
	}
}

func TestListsPageThroughEveryRowOnce(t *testing.T) {
	a := newAPI(t, defaultLimits(), 1)
	for _, tc := range []struct {
		path string
		want int
		time string
	}{
		{"/v1/traces?limit=7&" + a.rangeQ(), 100, "timestamp"},
		{"/v1/traces?limit=3&fields=io,metadata&name=A-name-2&" + a.rangeQ(), 20, "timestamp"},
		{"/v1/traces?tag=t1&" + a.rangeQ(), 50, "timestamp"},
		{"/v1/scores?limit=9&" + a.rangeQ(), 100, "timestamp"},
		{"/v1/llm-calls?limit=40&fields=io&" + a.rangeQ(), 300, "timestamp"},
		{"/v1/observations?limit=33&fields=metadata&" + a.rangeQ(), 400, "start_time"},
		{"/v1/findings?limit=7&" + a.rangeQ(), 60, "timestamp"},
		{"/v1/findings?severity=high&" + a.rangeQ(), 30, "timestamp"},
	} {
		rows := a.pages(tc.path, a.keyA)
		if len(rows) != tc.want {
			t.Fatalf("%s: %d rows, want %d", tc.path, len(rows), tc.want)
		}
		seen := map[string]bool{}
		prev := ""
		for _, row := range rows {
			id := row["id"].(string)
			if seen[id] {
				t.Fatalf("%s: %s twice", tc.path, id)
			}
			seen[id] = true
			key := fmt.Sprintf("%v|%s", row[tc.time], id)
			if prev != "" && key > prev {
				t.Fatalf("%s: %s after %s: not newest first", tc.path, key, prev)
			}
			prev = key
		}
	}
	// Filters narrow to exactly their rows.
	for _, row := range a.pages("/v1/llm-calls?status=error&provider=openai&"+a.rangeQ(), a.keyA) {
		if row["status"] != "error" || row["provider"] != "openai" {
			t.Fatalf("filtered llm call %v", row)
		}
	}
}

func TestTraceDetail(t *testing.T) {
	a := newAPI(t, defaultLimits(), 2)
	status, body := a.do("GET", "/v1/traces/trace-4", a.keyA, "")
	if status != 200 {
		t.Fatalf("%d %s", status, body)
	}
	var d traceDetail
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if d.Trace["id"] != "trace-4" || len(d.Observations) != 4 || len(d.Scores) != 1 || len(d.LLMCalls) != 3 || len(d.Findings) != 2 {
		t.Fatalf("trace-4: %d observations, %d scores, %d llm calls, %d findings: %s", len(d.Observations), len(d.Scores), len(d.LLMCalls), len(d.Findings), body)
	}
	if status, _ := a.do("GET", "/v1/traces/no-such-trace", a.keyA, ""); status != 404 {
		t.Fatalf("unknown trace: %d", status)
	}
}

// TestTenantsSeeOnlyTheirRows asks every route, with every parameter, filter, cursor and id
// the other tenant's rows have (both tenants share the project name and every id), and finds
// nothing of the other tenant in any answer.
func TestTenantsSeeOnlyTheirRows(t *testing.T) {
	a := newAPI(t, defaultLimits(), 3)
	// Tenant B's own cursors, taken from its pages.
	var cursorsB []string
	for _, p := range []string{"/v1/traces", "/v1/llm-calls", "/v1/observations", "/v1/scores", "/v1/findings"} {
		_, body := a.do("GET", p+"?limit=5&"+a.rangeQ(), a.keyB, "")
		var pg page
		_ = json.Unmarshal(body, &pg)
		if pg.NextCursor == "" {
			t.Fatalf("%s: tenant B has no second page", p)
		}
		cursorsB = append(cursorsB, p+"?limit=5&"+a.rangeQ()+"&cursor="+url.QueryEscape(pg.NextCursor))
	}
	paths := []string{
		"/v1/traces?" + a.rangeQ() + "&limit=500&fields=io,metadata",
		"/v1/traces?" + a.rangeQ() + "&name=B-secret-name-1",
		"/v1/traces?" + a.rangeQ() + "&user_id=B-secret",
		"/v1/llm-calls?" + a.rangeQ() + "&limit=500&user_id=B-secret",
		"/v1/llm-calls?" + a.rangeQ() + "&limit=500&trace_id=trace-3",
		"/v1/observations?" + a.rangeQ() + "&limit=500&name=B-secret",
		"/v1/observations?" + a.rangeQ() + "&limit=500&trace_id=trace-3",
		"/v1/scores?" + a.rangeQ() + "&limit=500&trace_id=trace-7",
		"/v1/findings?" + a.rangeQ() + "&limit=500",
		"/v1/findings?" + a.rangeQ() + "&source_id=obs-3&trace_id=trace-1",
		"/v1/traces/trace-3",
		"/v1/traces/trace-99",
		"/v1/traces?" + a.rangeQ() + "&tenant_id=" + a.tenB,
		"/v1/traces?" + a.rangeQ() + "&project_id=" + apiProject,
		"/v1/traces/trace-3?tenant=" + a.tenB,
	}
	paths = append(paths, cursorsB...)
	metrics := []string{
		fmt.Sprintf(`{"view":"llm_calls","fromTimestamp":%q,"toTimestamp":%q,"dimensions":[{"field":"user_id"}],"metrics":[{"measure":"count","aggregation":"count"}]}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339)),
		fmt.Sprintf(`{"view":"llm_calls","fromTimestamp":%q,"toTimestamp":%q,"dimensions":[{"field":"endpoint"}],"filters":[{"column":"user_id","operator":"=","value":"B-secret"}],"metrics":[{"measure":"count","aggregation":"count"}]}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339)),
		fmt.Sprintf(`{"view":"observations","fromTimestamp":%q,"toTimestamp":%q,"dimensions":[{"field":"name"}],"metrics":[{"measure":"count","aggregation":"count"}]}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339)),
		fmt.Sprintf(`{"view":"traces","fromTimestamp":%q,"toTimestamp":%q,"dimensions":[{"field":"name"}],"metrics":[{"measure":"count","aggregation":"count"}]}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339)),
		fmt.Sprintf(`{"view":"findings","fromTimestamp":%q,"toTimestamp":%q,"dimensions":[{"field":"severity"},{"field":"detector"}],"metrics":[{"measure":"count","aggregation":"count"},{"measure":"score","aggregation":"avg"}]}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339)),
		fmt.Sprintf(`{"view":"scores","fromTimestamp":%q,"toTimestamp":%q,"metrics":[{"measure":"value","aggregation":"max"}]}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339)),
	}
	leak := func(what string, body []byte) {
		t.Helper()
		if bytes.Contains(body, []byte("B-secret")) || bytes.Contains(body, []byte(a.tenB)) {
			t.Fatalf("%s: tenant A sees tenant B's rows:\n%.2000s", what, body)
		}
	}
	for _, p := range paths {
		_, body := a.do("GET", p, a.keyA, "")
		leak(p, body)
	}
	for _, m := range metrics {
		status, body := a.do("POST", "/v1/metrics", a.keyA, m)
		if status != 200 {
			t.Fatalf("%s: %d %s", m, status, body)
		}
		leak(m, body)
		if strings.Contains(m, `"max"`) && bytes.Contains(body, []byte(`"max_value":1`)) && !bytes.Contains(body, []byte(`"max_value":99`)) {
			t.Fatalf("%s: %s", m, body)
		}
	}
	// Histograms: B's user is in none of A's rows, so A's histogram of them has no bins, and
	// A's edges are A's (B's latencies are the same: its rows count twice if they leak).
	q := fmt.Sprintf(`{"view":"llm_calls","fromTimestamp":%q,"toTimestamp":%q,"filters":[{"column":"user_id","operator":"=","value":"B-secret"}],"metrics":[{"measure":"latency","aggregation":"histogram"}]}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339))
	if _, body := a.do("POST", "/v1/metrics", a.keyA, q); !bytes.Contains(body, []byte(`"histogram_latency":[]`)) {
		t.Fatalf("%s: %s", q, body)
	}
	q = fmt.Sprintf(`{"view":"llm_calls","fromTimestamp":%q,"toTimestamp":%q,"metrics":[{"measure":"latency","aggregation":"histogram"}],"config":{"bins":1}}`, a.start.Format(time.RFC3339), a.end.Format(time.RFC3339))
	if _, body := a.do("POST", "/v1/metrics", a.keyA, q); !bytes.Contains(body, []byte(`"count":300}`)) {
		t.Fatalf("%s: %s", q, body)
	}
	// And B sees its own: the leak check could fail.
	if _, body := a.do("GET", "/v1/traces/trace-3", a.keyB, ""); !bytes.Contains(body, []byte("B-secret")) {
		t.Fatalf("tenant B does not see its own trace: %s", body)
	}
}

func TestProblems(t *testing.T) {
	limits := defaultLimits()
	limits.RateBurst, limits.RatePerSecond = 30, 0.001
	a := newAPI(t, limits, 4)
	r := a.rangeQ()
	for _, tc := range []struct {
		method, path, key, body string
		status                  int
		mention                 string
	}{
		{"GET", "/v1/traces", "", "", 401, "missing Authorization"},
		{"GET", "/v1/traces", a.revoked, "", 401, "revoked"},
		{"GET", "/v1/traces", a.ingestOnly, "", 403, "scope"},
		{"GET", "/v1/traces?colour=red&" + r, a.keyA, "", 400, "unknown parameter"},
		{"GET", "/v1/traces?limit=0", a.keyA, "", 400, "limit"},
		{"GET", "/v1/traces?limit=501", a.keyA, "", 400, "limit"},
		{"GET", "/v1/traces?from=yesterday", a.keyA, "", 400, "RFC 3339"},
		{"GET", "/v1/traces?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", a.keyA, "", 400, "before"},
		{"GET", "/v1/traces?from=2000-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", a.keyA, "", 400, "longer than"},
		{"GET", "/v1/traces?cursor=abc", a.keyA, "", 400, "cursor"},
		{"GET", "/v1/traces?fields=secrets", a.keyA, "", 400, "field group"},
		{"GET", "/v1/findings?entity=x", a.keyA, "", 400, "unknown parameter"},
		{"GET", "/v1/nothing", a.keyA, "", 404, "openapi"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"llm_calls"}`, 400, "fromTimestamp"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"llm_calls","fromTimestamp":"2026-10-05T00:00:00Z","toTimestamp":"2026-10-06T00:00:00Z","metrics":[{"measure":"count","aggregation":"count"}],"colour":1}`, 400, "unknown field"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"llm_calls","fromTimestamp":"2026-10-05T00:00:00Z","toTimestamp":"2026-10-06T00:00:00Z","dimensions":[{"field":"trace_id"}],"metrics":[{"measure":"count","aggregation":"count"}]}`, 400, "high cardinality"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"llm_calls","fromTimestamp":"2026-10-05T00:00:00Z","toTimestamp":"2026-10-06T00:00:00Z","metrics":[{"measure":"latency","aggregation":"p42"}]}`, 400, "unknown aggregation"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"llm_calls","fromTimestamp":"2026-10-05T00:00:00Z","toTimestamp":"2026-10-04T00:00:00Z","metrics":[{"measure":"count","aggregation":"count"}]}`, 400, "before"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"llm_calls","fromTimestamp":"2026-01-05T00:00:00Z","toTimestamp":"2026-10-04T00:00:00Z","timeDimension":{"granularity":"minute"},"metrics":[{"measure":"count","aggregation":"count"}]}`, 400, "buckets"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"users","fromTimestamp":"2026-10-05T00:00:00Z","toTimestamp":"2026-10-06T00:00:00Z","metrics":[]}`, 400, "unknown view"},
		{"POST", "/v1/metrics", a.keyA, `{"view":"llm_calls","fromTimestamp":"2026-10-05T00:00:00Z","toTimestamp":"2026-10-06T00:00:00Z","filters":[{"column":"model","operator":"like","value":"%"}],"metrics":[{"measure":"count","aggregation":"count"}]}`, 400, "unknown operator"},
	} {
		status, body := a.do(tc.method, tc.path, tc.key, tc.body)
		if status != tc.status || !strings.Contains(string(body), tc.mention) {
			t.Errorf("%s %s %s: %d %s, want %d mentioning %q", tc.method, tc.path, tc.body, status, body, tc.status, tc.mention)
		}
	}
	// The key's burst is used up by now (30 requests, refilled once in 1000 s).
	for i := 0; i < 30; i++ {
		status, body := a.do("GET", "/v1/traces?limit=1&"+r, a.keyA, "")
		if status == 429 {
			if !strings.Contains(string(body), "requests per second") {
				t.Fatalf("429: %s", body)
			}
			// Another key has its own budget.
			if status, _ := a.do("GET", "/v1/traces?limit=1&"+r, a.keyB, ""); status != 200 {
				t.Fatalf("tenant B's key: %d", status)
			}
			return
		}
	}
	t.Fatal("no 429 after the burst")
}

// TestRoutesMatchOpenAPI checks that every route the handler serves is in the document, with
// its method, and every path of the document is served.
func TestRoutesMatchOpenAPI(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPIJSON, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	served := map[string]bool{}
	for _, r := range routes() {
		served[r] = true
		if !documented[r] {
			t.Errorf("%s is served but not in openapi.yaml", r)
		}
	}
	for r := range documented {
		if !served[r] {
			t.Errorf("%s is in openapi.yaml but not served", r)
		}
	}
}

// TestOpenAPIValidatorCatchesWrongAnswers makes sure the validation above can fail: an answer
// with a field the document does not have, or a number where it says string, is refused.
func TestOpenAPIValidatorCatchesWrongAnswers(t *testing.T) {
	doc, err := libopenapi.NewDocument(openAPIJSON)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := validator.NewValidator(doc)
	for _, body := range []string{
		`{"data":[{"id":"x","timestamp":null,"name":"n","user_id":"","session_id":"","release":"","app_version":"","environment":"","tags":[],"tenant_id":"t"}]}`,
		`{"data":[{"id":1,"timestamp":null,"name":"n","user_id":"","session_id":"","release":"","app_version":"","environment":"","tags":[]}]}`,
		`{"rows":[]}`,
	} {
		req, _ := http.NewRequest("GET", "http://query.test/v1/traces", nil)
		resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body)), Request: req}
		if ok, _ := v.ValidateHttpResponse(req, resp); ok {
			t.Errorf("the validator accepts %s", body)
		}
	}
}

// TestListsShowOnlyTheLatestVersion: a trace updated to a later time of its day and another
// name is listed by its latest version only, whatever the range, filter or cursor; ClickHouse
// 18.16 checks a WHERE before FINAL collapses versions, so only the key's columns go under it.
func TestListsShowOnlyTheLatestVersion(t *testing.T) {
	a := newAPI(t, defaultLimits(), 5)
	s := store(t)
	old := clickhouse.Trace{Envelope: clickhouse.Envelope{TenantID: a.tenantA, ProjectID: apiProject, ID: "moved", Version: 1},
		Timestamp: a.start.Add(time.Hour), Name: "before"}
	moved := old
	moved.Version, moved.Timestamp, moved.Name = 2, a.start.Add(20*time.Hour), "after"
	write(t, s, clickhouse.Batch{Traces: []clickhouse.Trace{old}})
	write(t, s, clickhouse.Batch{Traces: []clickhouse.Trace{moved}})
	until := url.QueryEscape(a.start.Add(2 * time.Hour).Format(time.RFC3339))
	for _, path := range []string{
		"/v1/traces?limit=500&to=" + until + "&from=" + url.QueryEscape(a.start.Format(time.RFC3339)),
		"/v1/traces?limit=500&name=before&" + a.rangeQ(),
	} {
		for _, row := range a.pages(path, a.keyA) {
			if row["id"] == "moved" {
				t.Fatalf("%s: the old version of the moved trace is listed: %v", path, row)
			}
		}
	}
	rows := a.pages("/v1/traces?limit=3&name=after&"+a.rangeQ(), a.keyA)
	if len(rows) != 1 || rows[0]["id"] != "moved" {
		t.Fatalf("the moved trace: %v", rows)
	}
}

// TestTraceDetailShowsLatestVersions writes, in a trace, rows updated, redelivered and moved
// to another trace, and finds in each detail exactly each row's latest version, whether the
// trace index lists the rows' ids or only their days (the second read selects rows of which
// some version is in the trace).
func TestTraceDetailShowsLatestVersions(t *testing.T) {
	s := store(t)
	r := testReader(t, s)
	p := authclient.Principal{Tenant: "tenant-versions", Project: apiProject}
	day := time.Date(2026, 10, 7, 9, 0, 0, 0, time.UTC)
	env := func(id string, version uint64) clickhouse.Envelope {
		return clickhouse.Envelope{TenantID: p.Tenant, ProjectID: p.Project, ID: id, EventID: fmt.Sprintf("%s-v%d", id, version), Version: version}
	}
	obs := func(id, trace, name string, version uint64) clickhouse.Observation {
		return clickhouse.Observation{Envelope: env(id, version), TraceID: trace, Type: "SPAN", Name: name, Level: "DEFAULT", StartTime: day.Add(time.Minute)}
	}
	write(t, s, clickhouse.Batch{Traces: []clickhouse.Trace{
		{Envelope: env("dv-1", 1), Timestamp: day, Name: "first"},
		{Envelope: env("dv-2", 1), Timestamp: day, Name: "second"},
	}})
	// Six observations stay in dv-1 (more than the index lists for a limit of 1).
	var b clickhouse.Batch
	for i := range 6 {
		b.Observations = append(b.Observations, obs(fmt.Sprintf("dv-o%d", i), "dv-1", "kept", 1))
	}
	b.Observations = append(b.Observations, obs("dv-updated", "dv-1", "before", 1), obs("dv-moved", "dv-1", "moved", 1))
	write(t, s, b)
	write(t, s, clickhouse.Batch{Traces: []clickhouse.Trace{{Envelope: env("dv-1", 2), Timestamp: day, Name: "first, renamed"}},
		Observations: []clickhouse.Observation{obs("dv-updated", "dv-1", "after", 2), obs("dv-moved", "dv-2", "moved", 2), obs("dv-o0", "dv-1", "kept", 1)}})

	want := map[string]string{"dv-updated": "after"}
	for i := range 6 {
		want[fmt.Sprintf("dv-o%d", i)] = "kept"
	}
	check := func(trace string, want map[string]string, limit int) {
		t.Helper()
		d, err := r.detail(context.Background(), p, trace, limit)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, o := range d.Observations {
			if _, twice := got[o["id"].(string)]; twice {
				t.Fatalf("%s: observation %s answered twice", trace, o["id"])
			}
			got[o["id"].(string)] = o["name"].(string)
		}
		if limit < len(want) {
			if len(got) != limit || !slices.Contains(d.Truncated, "observations") {
				t.Fatalf("%s, limit %d: %v, truncated %v", trace, limit, got, d.Truncated)
			}
			for id, name := range got {
				if want[id] != name {
					t.Fatalf("%s, limit %d: %s is %q, want %q", trace, limit, id, name, want[id])
				}
			}
			return
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s, limit %d: observations %v, want %v", trace, limit, got, want)
		}
	}
	check("dv-1", want, 1000)
	check("dv-2", map[string]string{"dv-moved": "moved"}, 1000)
	// With a limit of 1 the index lists ids for at most 4 entries: dv-1's observations are
	// read by their day and the trace id's candidates.
	if idx, err := r.traceIndex(context.Background(), p, "dv-1", 1); err != nil || len(idx["observation"].ids) != 0 || len(idx["observation"].days) != 1 {
		t.Fatalf("index for a limit of 1: %+v %v", idx, err)
	}
	check("dv-1", want, 1)
	d, err := r.detail(context.Background(), p, "dv-1", 1000)
	if err != nil || d.Trace["name"] != "first, renamed" {
		t.Fatalf("trace row: %v %v", d.Trace, err)
	}
}

// A range whose ends fall between two of the column's ticks keeps the rows a reader expects:
// not the row one second before from, and, when to is left out, the rows stored in the
// current second (a trace posted just now is in the list).
func TestRangeEndsBetweenTicks(t *testing.T) {
	s := store(t)
	tenant := fmt.Sprintf("ticks-%d", time.Now().UnixNano())
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	var b clickhouse.Batch
	for i := 0; i < 3; i++ {
		b.Traces = append(b.Traces, clickhouse.Trace{
			Envelope:  clickhouse.Envelope{TenantID: tenant, ProjectID: apiProject, ID: fmt.Sprintf("tick-%d", i), Version: 1},
			Timestamp: t0.Add(time.Duration(i) * time.Second), Name: "tick",
		})
	}
	write(t, s, b)
	keys := authtest.New(t)
	key, _ := keys.Add(auth.NewKey{Tenant: tenant, Project: apiProject, Scopes: []authclient.Scope{authclient.ScopeQuery}})
	now := t0.Add(2500 * time.Millisecond)
	h := NewHandler(keys.Store(), testReader(t, s), HandlerOptions{Limits: defaultLimits(), Now: func() time.Time { return now }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	ids := func(q url.Values) []string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/v1/traces?"+q.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var pg page
		if err := json.NewDecoder(resp.Body).Decode(&pg); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %v", q.Encode(), resp.StatusCode, err)
		}
		var out []string
		for _, row := range pg.Data {
			out = append(out, row["id"].(string))
		}
		return out
	}
	at := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
	if got := ids(url.Values{"from": {at(500 * time.Millisecond)}}); !slices.Equal(got, []string{"tick-2", "tick-1"}) {
		t.Errorf("from 0.5 s to now (2.5 s): %v, want tick-2 and tick-1", got)
	}
	if got := ids(url.Values{"from": {at(-time.Second)}, "to": {at(1500 * time.Millisecond)}}); !slices.Equal(got, []string{"tick-1", "tick-0"}) {
		t.Errorf("from -1 s to 1.5 s: %v, want tick-1 and tick-0", got)
	}
	if got := ids(url.Values{"from": {at(-time.Second)}, "to": {at(2 * time.Second)}}); !slices.Equal(got, []string{"tick-1", "tick-0"}) {
		t.Errorf("from -1 s to 2 s, exclusive: %v, want tick-1 and tick-0", got)
	}
}

func TestTimeParamMovesUpToTheNextTick(t *testing.T) {
	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		dt64 bool
		at   time.Time
		want int64
	}{
		{false, t0, t0.Unix()},
		{false, t0.Add(time.Nanosecond), t0.Unix() + 1},
		{false, t0.Add(999 * time.Millisecond), t0.Unix() + 1},
		{true, t0, t0.UnixMilli()},
		{true, t0.Add(time.Microsecond), t0.UnixMilli() + 1},
		{true, t0.Add(time.Millisecond), t0.UnixMilli() + 1},
	} {
		r := &reader{features: clickhouse.Features{DateTime64: c.dt64}}
		if _, got := r.timeParam(c.at); got != c.want {
			t.Errorf("DateTime64 %v, %s: bound %v, want %d", c.dt64, c.at.Format(time.RFC3339Nano), got, c.want)
		}
	}
}
