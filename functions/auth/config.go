package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/trustplane/trustplane/functions/runtime"
)

// Config is the auth function's environment. Its defaults are the tags.
type Config struct {
	runtime.Common
	KeysFile       string        `envconfig:"AUTH_KEYS_FILE" required:"true"`
	Pepper         string        `envconfig:"AUTH_PEPPER"`
	PepperFile     string        `envconfig:"AUTH_PEPPER_FILE"`
	ReloadInterval time.Duration `envconfig:"AUTH_RELOAD_INTERVAL" default:"5s"`
}

// Validate checks the settings: the pepper's presence, and its length when it is given as a
// value. A pepper file is read by New.
func (c Config) Validate() error {
	errs := []error{c.Common.Validate()}
	if c.KeysFile == "" {
		errs = append(errs, errors.New("AUTH_KEYS_FILE is required"))
	}
	switch {
	case c.Pepper != "" && c.PepperFile != "":
		errs = append(errs, errors.New("set only one of AUTH_PEPPER and AUTH_PEPPER_FILE"))
	case c.Pepper == "" && c.PepperFile == "":
		errs = append(errs, errors.New("one of AUTH_PEPPER and AUTH_PEPPER_FILE is required"))
	case c.Pepper != "":
		if _, err := NewPepper([]byte(c.Pepper)); err != nil {
			errs = append(errs, fmt.Errorf("AUTH_PEPPER: %w", err))
		}
	}
	if c.ReloadInterval <= 0 {
		errs = append(errs, fmt.Errorf("AUTH_RELOAD_INTERVAL must be positive, got %s", c.ReloadInterval))
	}
	return errors.Join(errs...)
}

// LoadPepper returns the configured pepper.
func (c Config) LoadPepper() (Pepper, error) { return LoadPepper(c.Pepper, c.PepperFile) }
