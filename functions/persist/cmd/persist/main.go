// Command persist stores telemetry delivered by the broker in ClickHouse.
package main

import (
	"github.com/trustplane/trustplane/functions/persist"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("persist", persist.New) }
