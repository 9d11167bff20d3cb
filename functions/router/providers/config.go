package providers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Provider types.
const (
	ProviderOpenAI           = "openai"
	ProviderAzure            = "azure"
	ProviderAnthropic        = "anthropic"
	ProviderOpenAICompatible = "openai-compatible"
	ProviderMock             = "mock"
)

// Config is one provider account, as the routing file names it. Its key is never in the file:
// the file names the environment variable or file (from a Secret) holding it.
type Config struct {
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	BaseURL    string   `json:"base_url,omitempty"`
	APIKeyEnv  string   `json:"api_key_env,omitempty"`
	APIKeyFile string   `json:"api_key_file,omitempty"`
	APIVersion string   `json:"api_version,omitempty"` // Azure api-version, Anthropic anthropic-version
	Timeout    Duration `json:"timeout,omitempty"`     // default per target timeout
	MaxTokens  int64    `json:"max_tokens,omitempty"`  // Anthropic: max_tokens when the client sets none
	Latency    Duration `json:"latency,omitempty"`     // mock: simulated provider time
}

// New builds the provider pc describes; getenv and readFile resolve its key.
func New(pc Config, client *http.Client, getenv func(string) string, readFile func(string) ([]byte, error)) (Provider, error) {
	key, err := apiKey(pc, getenv, readFile)
	if err != nil {
		return nil, err
	}
	base := strings.TrimRight(pc.BaseURL, "/")
	needURL := func(def string) (string, error) {
		if base == "" {
			base = def
		}
		if base == "" || !(strings.HasPrefix(base, "http://") || strings.HasPrefix(base, "https://")) {
			return "", fmt.Errorf("base_url must be an http(s) URL, got %q", pc.BaseURL)
		}
		return base, nil
	}
	switch pc.Type {
	case ProviderOpenAI, ProviderOpenAICompatible:
		def := ""
		if pc.Type == ProviderOpenAI {
			def = "https://api.openai.com/v1"
			if key == "" {
				return nil, errors.New("an openai provider needs api_key_env or api_key_file")
			}
		}
		u, err := needURL(def)
		if err != nil {
			return nil, err
		}
		return &openAIProvider{name: pc.Name, client: client, baseURL: u, apiKey: key}, nil
	case ProviderAzure:
		u, err := needURL("")
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, errors.New("an azure provider needs api_key_env or api_key_file")
		}
		v := pc.APIVersion
		if v == "" {
			v = "2024-10-21"
		}
		return &openAIProvider{name: pc.Name, client: client, baseURL: u, apiKey: key, azure: true, apiVersion: v}, nil
	case ProviderAnthropic:
		u, err := needURL("https://api.anthropic.com")
		if err != nil {
			return nil, err
		}
		if key == "" {
			return nil, errors.New("an anthropic provider needs api_key_env or api_key_file")
		}
		v := pc.APIVersion
		if v == "" {
			v = "2023-06-01"
		}
		mt := pc.MaxTokens
		if mt <= 0 {
			mt = 4096
		}
		return &anthropicProvider{name: pc.Name, client: client, baseURL: u, apiKey: key, version: v, maxTokens: mt}, nil
	case ProviderMock:
		return &mockProvider{latency: time.Duration(pc.Latency)}, nil
	}
	return nil, fmt.Errorf("type must be openai, azure, anthropic, openai-compatible or mock, got %q", pc.Type)
}

// apiKey reads a provider's key from its environment variable or file; neither is required
// for an OpenAI-compatible server without auth. The key is never logged or echoed.
func apiKey(pc Config, getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	switch {
	case pc.APIKeyEnv != "" && pc.APIKeyFile != "":
		return "", errors.New("set api_key_env or api_key_file, not both")
	case pc.APIKeyEnv != "":
		k := strings.TrimSpace(getenv(pc.APIKeyEnv))
		if k == "" {
			return "", fmt.Errorf("environment variable %s (api_key_env) is empty", pc.APIKeyEnv)
		}
		return k, nil
	case pc.APIKeyFile != "":
		b, err := readFile(pc.APIKeyFile)
		if err != nil {
			return "", fmt.Errorf("api_key_file: %w", err)
		}
		k := strings.TrimSpace(string(b))
		if k == "" {
			return "", fmt.Errorf("api_key_file %s is empty", pc.APIKeyFile)
		}
		return k, nil
	}
	return "", nil
}

// Duration is a time.Duration written as "30s" in the file.
type Duration time.Duration

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration must be a string such as \"30s\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("bad duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// NewHTTPClient is the HTTP client providers share: keep-alive connections, at most conns idle
// ones per provider host, and no overall timeout (each target has its own, and streams run long).
func NewHTTPClient(conns int) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = conns * 4
	t.MaxIdleConnsPerHost = conns
	return &http.Client{Transport: t}
}
