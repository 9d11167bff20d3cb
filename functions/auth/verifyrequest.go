package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

// ParseVerifyRequest decodes verify request data strictly: JSON object, no unknown, duplicate or
// differently cased fields, no trailing data, a known scope. The key is only checked for presence here; its shape decides a
// "malformed" denial, not a bad request.
func ParseVerifyRequest(data []byte) (authclient.VerifyRequest, error) {
	var req authclient.VerifyRequest
	if len(bytes.TrimSpace(data)) == 0 {
		return authclient.VerifyRequest{}, errors.New(`verify request data is missing: want {"key": "...", "scope": "..."}`)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return authclient.VerifyRequest{}, fmt.Errorf("verify request data: %w", err)
	}
	// Token, not More: More reports no more data before a stray '}' or ']'.
	if _, err := dec.Token(); err != io.EOF {
		return authclient.VerifyRequest{}, errors.New("verify request data: trailing data after the JSON object")
	}
	if err := exactFieldNames(data); err != nil {
		return authclient.VerifyRequest{}, fmt.Errorf("verify request data: %w", err)
	}
	if req.Key == "" {
		return authclient.VerifyRequest{}, errors.New("verify request data: key is required")
	}
	if !req.Scope.Valid() {
		return authclient.VerifyRequest{}, fmt.Errorf("verify request data: scope must be one of ingest, query, llm, got %q", req.Scope)
	}
	return req, nil
}

// exactFieldNames checks that data, a JSON object that already decoded into VerifyRequest, names
// each field once and in its exact case. encoding/json matches names case-insensitively and lets
// the last of two equal names win; another reader of the same request could take the other one.
func exactFieldNames(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the opening brace
		return err
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string)
		if name != "key" && name != "scope" {
			return fmt.Errorf("unknown field %q (fields are key and scope, in lowercase)", name)
		}
		if seen[name] {
			return fmt.Errorf("duplicate field %q", name)
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}
