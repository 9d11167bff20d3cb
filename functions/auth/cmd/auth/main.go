// Command auth is the trustplane auth function: it answers CloudEvents verify requests for API
// keys from the key file named by AUTH_KEYS_FILE, reloading the file when it changes.
package main

import (
	"github.com/trustplane/trustplane/functions/auth"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("auth", auth.New) }
