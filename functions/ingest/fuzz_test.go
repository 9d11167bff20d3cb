package ingest

import (
	"context"
	"net/http"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"

	"github.com/trustplane/trustplane/eventing/catalog"
	"github.com/trustplane/trustplane/functions/auth/authclient"
)

var fuzzPrincipal = authclient.Principal{KeyID: "k", Tenant: "acme", Project: "web"}

// FuzzStructured feeds arbitrary bodies to the structured-mode decoder and the validation that
// follows: no panic, and an event that passes carries the key's tenant and a partition key.
func FuzzStructured(f *testing.F) {
	f.Add([]byte(structured("e", catalog.TypeTrace, traceData)))
	f.Add([]byte(structured("e", catalog.TypeObservation, `{"id":"o","trace_id":"t","type":"SPAN","start_time":"2026-11-29T10:00:00Z"}`)))
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"/s","type":"io.trustplane.telemetry.score.v1","data_base64":"e30="}`))
	f.Add([]byte(`{"specversion":"0.3"}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		e, problems := decodeStructured(body)
		if problems != nil {
			return
		}
		if problems = prepare(&e, fuzzPrincipal); len(problems) > 0 {
			return
		}
		checkAccepted(t, e)
	})
}

// checkAccepted holds an event that passed prepare to what goes to Kafka: a valid event that
// carries the key's identity, whatever it claimed, and the partition key of its data, which
// the catalog (and so persist) reads.
func checkAccepted(t *testing.T, e cloudevents.Event) {
	t.Helper()
	ext := e.Extensions()
	if ext[catalog.ExtTenant] != fuzzPrincipal.Tenant || ext[catalog.ExtProject] != fuzzPrincipal.Project || ext[catalog.ExtKeyID] != fuzzPrincipal.KeyID {
		t.Fatalf("accepted event without the key's identity: %v", ext)
	}
	if err := e.Validate(); err != nil {
		t.Fatalf("accepted an invalid event: %v", err)
	}
	ct, ok := catalog.Lookup(e.Type())
	if !ok {
		t.Fatalf("accepted an event of unknown type %q", e.Type())
	}
	key, problems := ct.Validate(e.Data())
	if len(problems) > 0 || key == "" || ext[catalog.ExtPartitionKey] != key {
		t.Fatalf("accepted data %q with partition key %v; the catalog says key %q, problems %v", e.Data(), ext[catalog.ExtPartitionKey], key, problems)
	}
	if _, err := ct.Unmarshal(e.Data()); err != nil {
		t.Fatalf("accepted data %q that persist cannot decode: %v", e.Data(), err)
	}
}

// FuzzBinary does the same for binary mode, with the data and one header value from the fuzzer.
func FuzzBinary(f *testing.F) {
	f.Add(catalog.TypeTrace, "application/json", []byte(traceData))
	f.Add("", "text/plain", []byte("hello"))
	f.Add(catalog.TypeScore, "application/json; charset=utf-8", []byte(`{"id":"s"}`))
	f.Fuzz(func(t *testing.T, typ, contentType string, body []byte) {
		h := http.Header{}
		h.Set("Ce-Specversion", "1.0")
		h.Set("Ce-Id", "1")
		h.Set("Ce-Source", "/fuzz")
		h.Set("Ce-Type", typ)
		h.Set("Content-Type", contentType)
		e, _, problems := decodeBinary(context.Background(), h, body)
		if problems != nil {
			return
		}
		if problems = prepare(&e, fuzzPrincipal); len(problems) > 0 {
			return
		}
		checkAccepted(t, e)
	})
}
