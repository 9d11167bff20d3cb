package persist

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest"
	"github.com/trustplane/trustplane/clickhouse/chtest/readback"
	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/runtime"
)

var server *chtest.Server

func TestMain(m *testing.M) {
	if os.Getenv(benchServeEnv) != "" {
		// The delivery benchmark runs persist in a process of its own, so that its CPU time and
		// peak memory are measured apart from the client and ClickHouse.
		os.Exit(benchServe())
	}
	os.Exit(chtest.RunMain(m, &server))
}

func openStore(t testing.TB) *clickhouse.Store {
	t.Helper()
	ctx := context.Background()
	db := "persist_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	st, err := clickhouse.Open(ctx, clickhouse.Config{Addr: server.Addr(), Database: db})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := clickhouse.Migrate(ctx, st.Conn(), st.MigrateOptions()); err != nil {
		t.Fatal(err)
	}
	return st
}

// defaultConfig is persist's configuration with the defaults a deployment gets.
func defaultConfig(t testing.TB) Config {
	t.Helper()
	t.Setenv("CLICKHOUSE_ADDR", server.Addr())
	var cfg Config
	if err := runtime.LoadConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func telemetry(id, typ, data string) cloudevents.Event {
	e := cloudevents.NewEvent()
	e.SetID(id)
	e.SetSource("/test")
	e.SetType(typ)
	_ = e.SetData(cloudevents.ApplicationJSON, []byte(data))
	e.SetExtension(catalog.ExtTenant, "acme")
	e.SetExtension(catalog.ExtProject, "web")
	return e
}

func TestRowsMapsEveryType(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b, err := Rows(telemetry("e1", catalog.TypeObservation, `{"id":"o1","trace_id":"t1","type":"GENERATION","start_time":"2026-11-29T10:00:00Z",
		"end_time":"2026-11-29T10:00:02Z","model":"gpt","input":{"q":1},"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7},
		"cost":{"total":0.25},"metadata":{"b":"2","a":"1"}}`), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Observations) != 1 || b.Len() != 1 {
		t.Fatalf("batch %+v", b)
	}
	o := b.Observations[0]
	if o.TenantID != "acme" || o.ProjectID != "web" || o.ID != "o1" || o.TraceID != "t1" || o.EventID != "e1" || o.EventSource != "/test" ||
		o.TotalTokens != 7 || o.TotalCost != 0.25 || o.Input != `{"q":1}` || o.Level != "DEFAULT" || o.Metadata["a"] != "1" ||
		o.Version != uint64(now.UnixMilli()) || o.EndTime.Sub(o.StartTime) != 2*time.Second || !o.CompletionStartTime.IsZero() {
		t.Fatalf("observation row %+v", o)
	}
	received := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	withTime := telemetry("e4", catalog.TypeTrace, `{"id":"t2","timestamp":"2026-11-29T10:00:00Z"}`)
	withTime.SetExtension(catalog.ExtIngestTime, received)
	if b, err := Rows(withTime, now); err != nil || b.Traces[0].Version != uint64(received.UnixMilli()) {
		t.Fatalf("version from ingesttime: %+v, %v", b, err)
	}
	b, err = Rows(telemetry("e2", catalog.TypeTrace, `{"id":"t1","timestamp":"2026-11-29T10:00:00Z","version":"7","tags":["x"]}`), now)
	if err != nil || len(b.Traces) != 1 || b.Traces[0].AppVersion != "7" || b.Traces[0].Tags[0] != "x" {
		t.Fatalf("trace rows %+v, %v", b, err)
	}
	b, err = Rows(telemetry("e3", catalog.TypeScore, `{"id":"s1","trace_id":"t1","name":"q","value":0.5,"timestamp":"2026-11-29T10:00:00Z"}`), now)
	if err != nil || len(b.Scores) != 1 || b.Scores[0].Value != 0.5 || b.Scores[0].Source != "API" {
		t.Fatalf("score rows %+v, %v", b, err)
	}
}

func TestRowsRejectsWhatCanNeverBeStored(t *testing.T) {
	noTenant := telemetry("e", catalog.TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`)
	noTenant.SetExtension(catalog.ExtTenant, nil) // nil removes the extension
	cases := map[string]struct {
		e    cloudevents.Event
		want string
	}{
		"unknown type":     {telemetry("e", "com.example.other", `{}`), "unknown event type"},
		"bad data":         {telemetry("e", catalog.TypeTrace, `{"id":"t"}`), "timestamp"},
		"no tenant":        {noTenant, "tenantid"},
		"not json":         {telemetry("e", catalog.TypeTrace, `{`), "JSON"},
		"invalid envelope": {func() cloudevents.Event { e := telemetry("", catalog.TypeTrace, `{}`); return e }(), "id"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Rows(c.e, time.Now()); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

func TestGroupCommitSharesInsertsAndStoresEveryRow(t *testing.T) {
	st := openStore(t)
	reg := prometheus.NewRegistry()
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, reg)
	const writers = 300
	for _, err := range writeTraces(g, writers)() {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n, err := readback.CountRows(context.Background(), st, clickhouse.TableTraces, "acme")
	if err != nil || n != writers {
		t.Fatalf("stored %d rows (%v), want %d", n, err, writers)
	}
	var m prometheusHistogram
	m.read(t, reg, "trustplane_persist_batch_rows")
	if m.count >= writers || m.sum != writers {
		t.Fatalf("%d inserts for %d rows: concurrent deliveries did not share inserts", m.count, m.sum)
	}
	t.Logf("%d deliveries written in %d inserts", writers, m.count)
	if err := g.Write(context.Background(), clickhouse.Batch{}); err != ErrClosed {
		t.Fatalf("write after close: %v", err)
	}
}

// writeTraces writes n one-trace batches through g, each from a goroutine of its own as
// concurrent deliveries do; wait returns their errors once every one is answered.
func writeTraces(g *GroupCommit, n int) (wait func() []error) {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := Rows(telemetry(fmt.Sprint(i), catalog.TypeTrace, fmt.Sprintf(`{"id":"t%d","timestamp":"2026-11-29T10:00:00Z"}`, i)), time.Now())
			if err == nil {
				err = g.Write(context.Background(), b)
			}
			errs[i] = err
		}()
	}
	return func() []error {
		wg.Wait()
		return errs
	}
}

type prometheusHistogram struct {
	count, sum uint64
	sumf       float64
}

func (h *prometheusHistogram) read(t testing.TB, reg *prometheus.Registry, name string) {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			m := f.GetMetric()[0].GetHistogram()
			h.count, h.sum, h.sumf = m.GetSampleCount(), uint64(m.GetSampleSum()), m.GetSampleSum()
			return
		}
	}
	t.Fatalf("no metric %s", name)
}

func TestCloseWritesWhatIsPending(t *testing.T) {
	st := openStore(t)
	g := NewGroupCommit(st, GroupCommitConfig{MaxRows: 1000, MinInterval: time.Hour, Idle: time.Hour, MaxWait: time.Hour, MaxInflight: 1, InsertTimeout: 30 * time.Second}, nil, nil)
	b, err := Rows(telemetry("e", catalog.TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- g.Write(context.Background(), b) }()
	// The row waits for a batch that will never fill.
	waiting := func() float64 {
		var m dto.Metric
		_ = g.waiting.Write(&m)
		return m.GetGauge().GetValue()
	}
	// Queuing takes microseconds; 30 s is only used up by a machine stalled that long.
	for deadline := time.Now().Add(30 * time.Second); waiting() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the write was not queued")
		}
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("pending write: %v", err)
	}
	if n, _ := readback.CountRows(context.Background(), st, clickhouse.TableTraces, "acme"); n != 1 {
		t.Fatalf("stored %d rows, want 1", n)
	}
}

// serve runs the handler behind a real HTTP server, as in production.
func serve(t *testing.T, w clickhouse.Writer) string {
	t.Helper()
	srv := httptest.NewServer(NewHandler(w, slog.New(slog.DiscardHandler), nil))
	t.Cleanup(srv.Close)
	return srv.URL
}

// postBinary posts data as a binary-mode delivery with the given ce- headers, as the broker
// delivers.
func postBinary(t *testing.T, url string, headers map[string]string, data string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func binaryHeaders(id, typ string) map[string]string {
	return map[string]string{"ce-specversion": "1.0", "ce-id": id, "ce-source": "/test", "ce-type": typ,
		"ce-tenantid": "acme", "ce-projectid": "web"}
}

// A delivery whose decoding panics is answered 400 with the reason, like any event that can
// never be stored, and the process and its decoders go on serving the next deliveries.
func TestDecodePanicIsAnInvalidEvent(t *testing.T) {
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	h := NewHandler(g, slog.New(slog.DiscardHandler), nil)
	h.rows = func(d *delivery, now time.Time) (clickhouse.Batch, error) {
		if d.id == "poison" {
			panic("a decoder bug")
		}
		return rowsOf(d, now)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	data := `{"id":"tp","timestamp":"2026-11-29T10:00:00Z","name":"n"}`
	// More poison than decoders: each must survive its panic.
	for i := 0; i < 2*goruntime.GOMAXPROCS(0)+1; i++ {
		code, body := postBinary(t, srv.URL, binaryHeaders("poison", catalog.TypeTrace), data)
		if code != http.StatusBadRequest || !strings.Contains(body, "could not be decoded") {
			t.Fatalf("poison delivery %d: %d %q, want 400 naming the failure", i, code, body)
		}
	}
	if code, body := postBinary(t, srv.URL, binaryHeaders("fine", catalog.TypeTrace), data); code != http.StatusOK {
		t.Fatalf("delivery after the panics: %d %s", code, body)
	}
	traces, err := readback.Traces(context.Background(), st, "acme", "web")
	if err != nil || len(traces) != 1 || traces[0].EventID != "fine" {
		t.Fatalf("stored %+v, %v; want only the delivery that decoded", traces, err)
	}
}

func TestBinaryDeliveryIsStored(t *testing.T) {
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	h := binaryHeaders("b1", catalog.TypeTrace)
	h["ce-ingesttime"] = "2026-11-29T10:00:05.123Z"
	h["ce-keyid"] = "key1"
	if code, body := postBinary(t, url, h, `{"id":"tb","timestamp":"2026-11-29T10:00:00Z","name":"n","input":{"q":"hi"}}`); code != http.StatusOK {
		t.Fatalf("binary delivery: %d %s", code, body)
	}
	traces, err := readback.Traces(context.Background(), st, "acme", "web")
	if err != nil || len(traces) != 1 {
		t.Fatalf("traces %+v, %v", traces, err)
	}
	tr := traces[0]
	want := time.Date(2026, 11, 29, 10, 0, 5, 123e6, time.UTC)
	if tr.ID != "tb" || tr.EventID != "b1" || tr.EventSource != "/test" || tr.Name != "n" || tr.Input != `{"q":"hi"}` || tr.Version != uint64(want.UnixMilli()) {
		t.Fatalf("stored %+v", tr)
	}
}

func TestBinaryDeliveryIsCheckedStrictly(t *testing.T) {
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	const valid = `{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`
	without := func(name string) map[string]string {
		h := binaryHeaders("e", catalog.TypeTrace)
		delete(h, name)
		return h
	}
	badExtension := binaryHeaders("e", catalog.TypeTrace)
	badExtension["ce-bad_name"] = "x"
	cases := map[string]struct {
		headers map[string]string
		data    string
		want    string
	}{
		"unknown field": {binaryHeaders("e", catalog.TypeTrace), `{"id":"t","timestamp":"2026-11-29T10:00:00Z","tenant":"other"}`, "unknown field"},
		"wrong type":    {binaryHeaders("e", catalog.TypeTrace), `{"id":1,"timestamp":"2026-11-29T10:00:00Z"}`, "cannot unmarshal"},
		"trailing data": {binaryHeaders("e", catalog.TypeTrace), valid + ` {}`, "trailing data"},
		"not json":      {binaryHeaders("e", catalog.TypeTrace), `{`, "JSON"},
		"missing row":   {binaryHeaders("e", catalog.TypeTrace), `{"id":"t"}`, "timestamp"},
		"unknown type":  {binaryHeaders("e", "com.example.other"), valid, "unknown event type"},
		"no id":         {without("ce-id"), valid, "id"},
		"no source":     {without("ce-source"), valid, "source"},
		"no tenant":     {without("ce-tenantid"), valid, "tenantid"},
		"bad extension": {badExtension, valid, "Ce-Bad_name"},
		"bad time":      {func() map[string]string { h := binaryHeaders("e", catalog.TypeTrace); h["ce-time"] = "noon"; return h }(), valid, "time"},
		"bad media type": {func() map[string]string {
			h := binaryHeaders("e", catalog.TypeTrace)
			h["Content-Type"] = "a/b; ="
			return h
		}(), valid, "datacontenttype"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			code, body := postBinary(t, url, c.headers, c.data)
			if code != http.StatusBadRequest || !strings.Contains(body, c.want) {
				t.Fatalf("answer %d %q, want 400 mentioning %q", code, body, c.want)
			}
		})
	}
	if n, err := readback.CountRows(context.Background(), st, clickhouse.TableTraces, "acme"); err != nil || n != 0 {
		t.Fatalf("stored %d rows of invalid deliveries (%v)", n, err)
	}
}

func deliver(t *testing.T, url string, e cloudevents.Event) (int, string) {
	t.Helper()
	body, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/cloudevents+json", strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b := make([]byte, 4096)
	n, _ := resp.Body.Read(b)
	return resp.StatusCode, string(b[:n])
}

func TestRedeliveryCountsOnce(t *testing.T) {
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	e := telemetry("same-id", catalog.TypeObservation, `{"id":"o1","trace_id":"t1","type":"SPAN","start_time":"2026-11-29T10:00:00Z"}`)
	for i := range 2 {
		if code, body := deliver(t, url, e); code != http.StatusOK {
			t.Fatalf("delivery %d: %d %s", i, code, body)
		}
	}
	if n, err := readback.CountRows(context.Background(), st, clickhouse.TableObservations, "acme"); err != nil || n != 1 {
		t.Fatalf("observations in query results: %d (%v), want 1", n, err)
	}
}

func TestInvalidDeliveryIs400WithTheReason(t *testing.T) {
	st := openStore(t)
	g := NewGroupCommit(st, defaultConfig(t).GroupCommit(), nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	code, _ := deliver(t, url, telemetry("e", catalog.TypeTrace, `{"id":"t","timestamp":"yesterday"}`))
	if code != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", code)
	}
	if n, _ := readback.CountRows(context.Background(), st, clickhouse.TableTraces, "acme"); n != 0 {
		t.Fatalf("stored %d rows of an invalid event", n)
	}
}

func TestClickHouseDownIs503(t *testing.T) {
	own := chtest.Start(t)
	st, err := clickhouse.Open(context.Background(), clickhouse.Config{Addr: own.Addr(), Database: "down"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := clickhouse.Migrate(context.Background(), st.Conn(), st.MigrateOptions()); err != nil {
		t.Fatal(err)
	}
	g := NewGroupCommit(st, GroupCommitConfig{MaxRows: 100, MaxWait: 10 * time.Millisecond, MaxInflight: 1, InsertTimeout: 5 * time.Second}, nil, nil)
	defer g.Close(context.Background())
	url := serve(t, g)
	if err := own.Stop(); err != nil {
		t.Fatal(err)
	}
	code, _ := deliver(t, url, telemetry("e", catalog.TypeTrace, `{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`))
	if code != http.StatusServiceUnavailable {
		t.Fatalf("structured: status %d, want 503 so the broker retries", code)
	}
	code, body := postBinary(t, url, binaryHeaders("e", catalog.TypeTrace), `{"id":"t","timestamp":"2026-11-29T10:00:00Z"}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "not stored") {
		t.Fatalf("binary: %d %q, want 503 so the broker retries", code, body)
	}
}

func TestBatchDeadline(t *testing.T) {
	g := &GroupCommit{cfg: GroupCommitConfig{LargeRows: 1000, MinInterval: 50 * time.Millisecond, Idle: 2 * time.Millisecond, MaxWait: 500 * time.Millisecond}}
	t0 := time.Unix(1_800_000_000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	cases := map[string]struct {
		rows                 int
		first, last, started time.Time
		want                 time.Time
	}{
		"a pause after the rate cap":      {rows: 10, first: ms(100), last: ms(110), started: ms(0), want: ms(112)},
		"a pause before the rate cap":     {rows: 10, first: ms(10), last: ms(20), started: ms(0), want: ms(50)},
		"a steady stream":                 {rows: 10, first: ms(100), last: ms(149), started: ms(0), want: ms(150)},
		"a steady stream, insert running": {rows: 10, first: ms(100), last: ms(149), started: ms(120), want: ms(170)},
		// A large batch is written once the deliveries pause, whatever the rate cap says.
		"a large batch, a pause before the rate cap":     {rows: 1000, first: ms(10), last: ms(20), started: ms(0), want: ms(22)},
		"a large batch, a steady stream, insert running": {rows: 5000, first: ms(100), last: ms(149), started: ms(120), want: ms(150)},
	}
	for name, c := range cases {
		if got := g.deadline(c.rows, c.first, c.last, c.started); !got.Equal(c.want) {
			t.Errorf("%s: due at %s, want %s", name, got.Sub(t0), c.want.Sub(t0))
		}
	}
	g.cfg.MinInterval = time.Second // MaxWait bounds the wait whatever the rate cap says
	if got := g.deadline(10, ms(100), ms(100), ms(0)); !got.Equal(ms(600)) {
		t.Errorf("due at %s, want 600ms", got.Sub(t0))
	}
}

func TestBadConfigIsRefusedNamingTheVariable(t *testing.T) {
	for name, c := range map[string]struct{ env, value string }{
		"large batches beyond the batch size": {"PERSIST_LARGE_BATCH_ROWS", "20000"},
		"no large batches":                    {"PERSIST_LARGE_BATCH_ROWS", "0"},
		"a negative interval":                 {"PERSIST_MIN_INSERT_INTERVAL", "-1s"},
		"no insert slots":                     {"PERSIST_MAX_INFLIGHT_INSERTS", "0"},
		"not a number":                        {"PERSIST_BATCH_ROWS", "many"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("CLICKHOUSE_ADDR", "127.0.0.1:9000")
			t.Setenv(c.env, c.value)
			var cfg Config
			err := runtime.LoadConfig(&cfg)
			if err == nil || !strings.Contains(err.Error(), c.env) {
				t.Fatalf("%s=%s: %v, want an error naming %s", c.env, c.value, err, c.env)
			}
		})
	}
	if cfg := defaultConfig(t); cfg.GroupCommit().LargeRows != 1000 || cfg.GroupCommit().MaxRows != 10000 {
		t.Fatalf("defaults: %+v", cfg.GroupCommit())
	}
}

// recordingWriter writes through to ClickHouse and notes the size of each insert.
type recordingWriter struct {
	clickhouse.Writer
	mu    sync.Mutex
	sizes []int
}

func (w *recordingWriter) Write(ctx context.Context, b clickhouse.Batch) error {
	w.mu.Lock()
	w.sizes = append(w.sizes, b.Len())
	w.mu.Unlock()
	return w.Writer.Write(ctx, b)
}

func TestGroupCommitNeverExceedsMaxRows(t *testing.T) {
	st := openStore(t)
	w := &recordingWriter{Writer: st}
	g := NewGroupCommit(w, GroupCommitConfig{MaxRows: 10, LargeRows: 10, MinInterval: time.Hour, Idle: time.Hour, MaxWait: time.Hour,
		MaxInflight: 1, InsertTimeout: 30 * time.Second}, nil, nil)
	const writers = 95
	wait := writeTraces(g, writers)
	// Full batches are written at once (the hour-long waits never pass); the last 5 rows wait
	// for Close.
	// Waiting for them before Close is what tests it: Close alone would also write the rows
	// in batches of 10. The bound only turns a batch that never went out into a failure: nine
	// local inserts take well under a second, and 30 s is only used up by a stalled machine.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		w.mu.Lock()
		n := len(w.sizes)
		w.mu.Unlock()
		if n == writers/10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d full batches written before Close, want %d", n, writers/10)
		}
	}
	if err := g.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, err := range wait() {
		if err != nil {
			t.Fatal(err)
		}
	}
	total := 0
	for i, n := range w.sizes {
		if n > 10 || i < writers/10 && n != 10 {
			t.Fatalf("insert sizes %v: want full batches of 10, then the rest at Close", w.sizes)
		}
		total += n
	}
	if total != writers {
		t.Fatalf("inserted %d rows, want %d", total, writers)
	}
	if n, err := readback.CountRows(context.Background(), st, clickhouse.TableTraces, "acme"); err != nil || n != writers {
		t.Fatalf("stored %d rows (%v), want %d", n, err, writers)
	}
}
