package authclient

import (
	"fmt"
	"strings"
)

// Scope is a permission a key carries.
type Scope string

// The known scopes.
const (
	ScopeIngest Scope = "ingest"
	ScopeQuery  Scope = "query"
	ScopeLLM    Scope = "llm"
)

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return s == ScopeIngest || s == ScopeQuery || s == ScopeLLM }

// ParseScopes parses a comma-separated scope list such as "ingest,query".
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, part := range strings.Split(s, ",") {
		sc := Scope(strings.TrimSpace(part))
		if !sc.Valid() {
			return nil, fmt.Errorf("unknown scope %q (known: ingest, query, llm)", sc)
		}
		out = append(out, sc)
	}
	return out, nil
}

// Limits are per-key limits enforced by the functions that serve the key (the router). Zero means
// no limit of that kind.
type Limits struct {
	RequestsPerMinute int64   `json:"requests_per_minute,omitempty"`
	TokensPerMinute   int64   `json:"tokens_per_minute,omitempty"`
	USDPerDay         float64 `json:"usd_per_day,omitempty"`
}

// Principal is who a verified key speaks for; it is also the data of a verified reply.
type Principal struct {
	KeyID   string  `json:"key_id"`
	Tenant  string  `json:"tenant"`
	Project string  `json:"project"`
	Scopes  []Scope `json:"scopes"`
	Limits  *Limits `json:"limits,omitempty"`
}

// HasScope reports whether the principal carries s.
func (p Principal) HasScope(s Scope) bool {
	for _, have := range p.Scopes {
		if have == s {
			return true
		}
	}
	return false
}
