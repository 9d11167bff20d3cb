// Command router runs trustplane's OpenAI-compatible LLM gateway.
package main

import (
	"github.com/trustplane/trustplane/functions/router"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("router", router.New) }
