// Command guard checks telemetry for personal data, secrets and prompt injections and answers
// each delivery with its findings.
package main

import (
	"github.com/trustplane/trustplane/functions/guard"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("guard", guard.New) }
