package policy

import (
	"log/slog"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Source is the policy in force: the policy file's last good version, reloaded when the file
// changes (a ConfigMap update swaps the mounted file), or the built-in policy.
type Source = runtime.Current[Table]

// Load reads the policy file at path, or serves the built-in policy when path is empty. A file
// that does not load is an error here; later, a bad version is logged and the last good one
// kept. loaded, if set, is told of every load tried (nil for success), for a metric.
func Load(path string, logger *slog.Logger, loaded func(error)) (*Source, error) {
	if path == "" {
		return Fixed(Builtin()), nil
	}
	return runtime.Watch(&runtime.FileWatch[*Table]{
		What: "guard policy", Path: path, Logger: logger, MaxBytes: 4 << 20,
		Parse:  func(data []byte, _ func(string) ([]byte, error)) (*Table, error) { return Parse(data) },
		Loaded: loaded,
	})
}

// Fixed is a source that always serves t.
func Fixed(t *Table) *Source { return runtime.Fixed(t) }
