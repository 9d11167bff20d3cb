package routing

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Source is the routing in force: the routing file's last good version, reloaded when the file
// or a provider key file it names changes (a ConfigMap or Secret update swaps the mounted files),
// or the built-in mock routing.
type Source = runtime.Current[Table]

// Load reads the routing file at path, or serves the built-in mock routing when path is empty.
// A file that does not load is an error here; later, a bad version is logged and the last good
// one kept.
func Load(path string, client *http.Client, logger *slog.Logger) (*Source, error) {
	if path == "" {
		logger.Warn("ROUTER_CONFIG is not set: serving the built-in mock models (no real provider is called)")
		t, err := Parse([]byte(MockConfig), client, os.Getenv, os.ReadFile)
		if err != nil {
			return nil, fmt.Errorf("built-in mock routing: %w", err)
		}
		return Fixed(t), nil
	}
	return runtime.Watch(&runtime.FileWatch[*Table]{
		What: "routing config", Path: path, Logger: logger,
		Parse: func(data []byte, read func(string) ([]byte, error)) (*Table, error) {
			return Parse(data, client, os.Getenv, read)
		},
	})
}

// Fixed is a source that always serves t.
func Fixed(t *Table) *Source { return runtime.Fixed(t) }
