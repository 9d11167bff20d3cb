package clickhouse_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustplane/trustplane/clickhouse"
	"github.com/trustplane/trustplane/clickhouse/chtest/readback"
	"github.com/trustplane/trustplane/eventing/catalog"
)

func TestFindingsRoundTripAndRedeliveryCollapses(t *testing.T) {
	s := clickhouse.OpenMigrated(t)
	ctx := context.Background()
	ts := time.Date(2026, 11, 3, 10, 20, 30, 0, time.UTC)
	secret := clickhouse.Finding{TenantID: "acme", ProjectID: "proj-1", SourceType: catalog.TypeObservation, SourceID: "obs-1",
		SourceEventID: "evt-1", TraceID: "trace-1", Timestamp: ts, Side: catalog.SideInput, Detector: "secret.aws_access_key",
		Category: "secret", Entity: "AWS_ACCESS_KEY", Severity: "critical", Score: 0.99, SpanStart: 12, SpanEnd: 32,
		Preview: "AKIA****************", Fingerprint: "0f3a", Action: catalog.ActionObserve, Reasons: []string{"prefix", "entropy"},
		EventSource: "/trustplane/guard", EventID: "evt-1-findings", Version: 1700000000001}
	email := secret
	email.Side, email.Detector, email.Category, email.Entity, email.Severity = catalog.SideOutput, "pii.email", "pii", "EMAIL", "medium"
	email.SpanStart, email.SpanEnd, email.Preview, email.Fingerprint, email.Reasons, email.Truncated = 3, 19, "j***@e******.com", "", nil, true
	if err := s.Write(ctx, clickhouse.Batch{Findings: []clickhouse.Finding{secret, email}}); err != nil {
		t.Fatal(err)
	}
	// A redelivery writes the same rows again; so does a later re-post of the entity.
	again := secret
	again.Version++
	if err := s.Write(ctx, clickhouse.Batch{Findings: []clickhouse.Finding{secret, email, again}}); err != nil {
		t.Fatal(err)
	}
	got, err := readback.Findings(ctx, s, "acme", "proj-1")
	if err != nil {
		t.Fatal(err)
	}
	if want := []clickhouse.Finding{again, email}; !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, want)
	}
	if n, err := readback.CountRows(ctx, s, clickhouse.TableFindings, "acme"); err != nil || n != 2 {
		t.Errorf("count = %d, %v", n, err)
	}
}

func TestFindingsAreValidated(t *testing.T) {
	err := clickhouse.Batch{Findings: []clickhouse.Finding{{TenantID: "a", ProjectID: "p", SourceType: "x", SourceID: "o",
		Detector: "d", Side: "prompt", Action: "allow", SpanStart: 5, SpanEnd: 4}}}.Validate()
	for _, want := range []string{"findings[0]: timestamp is required", `got "prompt"`, `got "allow"`, "span_end 4 is before span_start 5"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to say %q", err, want)
		}
	}
}
