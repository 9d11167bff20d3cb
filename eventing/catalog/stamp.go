package catalog

import (
	"time"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// Origin is who sent an event, as the API key that sent it resolved: the tenant and project
// its rows belong to, and the key's public id.
type Origin struct {
	Tenant, Project, KeyID string
}

// Stamp sets the extensions every stored event carries: the origin's tenant, project and key
// id, the partition key (the trace the event belongs to, from its Payload's PartitionKey), and
// now as the ingest time, the row version stores use. The tenant and project always come from
// the key, whatever the event claimed.
func Stamp(e *cloudevents.Event, o Origin, partitionKey string) {
	e.SetExtension(ExtTenant, o.Tenant)
	e.SetExtension(ExtProject, o.Project)
	e.SetExtension(ExtKeyID, o.KeyID)
	e.SetExtension(ExtPartitionKey, partitionKey)
	e.SetExtension(ExtIngestTime, time.Now())
}
