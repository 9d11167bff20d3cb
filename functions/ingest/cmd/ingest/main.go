// Command ingest runs trustplane's public telemetry endpoint.
package main

import (
	"github.com/trustplane/trustplane/functions/ingest"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("ingest", ingest.New) }
