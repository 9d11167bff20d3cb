// Command batch runs trustplane's scheduled work (retention).
package main

import (
	"github.com/trustplane/trustplane/functions/batch"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("batch", batch.New) }
