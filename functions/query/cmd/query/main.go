// Command query runs trustplane's analytics API.
package main

import (
	"github.com/trustplane/trustplane/functions/query"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("query", query.New) }
