package catalog

import (
	"testing"
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
	cetypes "github.com/cloudevents/sdk-go/v2/types"
)

func TestStampSetsOriginPartitionKeyAndIngestTime(t *testing.T) {
	e := cloudevents.NewEvent()
	e.SetExtension(ExtTenant, "claimed-by-the-payload")
	before := time.Now()
	Stamp(&e, Origin{Tenant: "acme", Project: "web", KeyID: "abcdefgh"}, "trace-1")
	after := time.Now()
	ext := e.Extensions()
	for name, want := range map[string]string{ExtTenant: "acme", ExtProject: "web", ExtKeyID: "abcdefgh", ExtPartitionKey: "trace-1"} {
		if got, _ := cetypes.ToString(ext[name]); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	ingested, err := cetypes.ToTime(ext[ExtIngestTime])
	if err != nil {
		t.Fatalf("%s: %v", ExtIngestTime, err)
	}
	if ingested.Before(before.Truncate(time.Microsecond)) || ingested.After(after) {
		t.Errorf("%s = %s, not between %s and %s", ExtIngestTime, ingested, before, after)
	}
}
