package guard

import (
	"errors"

	"github.com/trustplane/trustplane/functions/guard/policy"
	"github.com/trustplane/trustplane/functions/runtime"
)

// Config is guard's configuration, read from the environment: the shared runtime's and the
// checks' (GUARD_POLICY, GUARD_POLICY_RELOAD, GUARD_FINGERPRINT_KEY_FILE,
// GUARD_MAX_SCAN_BYTES), which router reads too.
type Config struct {
	runtime.Common
	policy.Config
}

// Validate checks the configuration without reading any file.
func (c Config) Validate() error {
	return errors.Join(c.Common.Validate(), c.Config.Validate())
}
