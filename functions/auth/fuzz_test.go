package auth

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/trustplane/trustplane/functions/auth/authclient"
)

func FuzzParseKeyFile(f *testing.F) {
	f.Add([]byte(`{"keys":[` + goodRecord + `]}`))
	f.Add([]byte("keys:\n- id: abcdefgh\n  tenant: acme\n"))
	f.Add([]byte(`{"keys":[` + goodRecord + `,` + goodRecord + `]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte("keys: &a [*a]"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := ParseKeyFile(data)
		if err != nil {
			return
		}
		// Whatever is accepted is valid and survives a round trip through the writer's encoding.
		if err := kf.Validate(); err != nil {
			t.Fatalf("accepted an invalid file: %v", err)
		}
		b, err := json.Marshal(kf)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseKeyFile(b)
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v", err)
		}
		// Nothing is lost or changed on the way: the file read back encodes the same.
		if b2, err := json.Marshal(again); err != nil || !bytes.Equal(b, b2) {
			t.Fatalf("round trip changed the file:\n%s\n%s (%v)", b, b2, err)
		}
		if _, err := NewStore(testPepper, kf.Keys); err != nil {
			t.Fatalf("store rejects an accepted file: %v", err)
		}
	})
}

func FuzzParseVerifyRequest(f *testing.F) {
	key, _, _ := authclient.GenerateKey()
	f.Add([]byte(`{"key":"` + key + `","scope":"ingest"}`))
	f.Add([]byte(`{"key":"x","scope":"admin"}`))
	f.Add([]byte(`{"key":"x","scope":"llm"} {}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"key":1}`))
	store, err := NewStore(testPepper, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := ParseVerifyRequest(data)
		if err != nil {
			return
		}
		if req.Key == "" || !req.Scope.Valid() {
			t.Fatalf("accepted %+v", req)
		}
		// An accepted request always gets a denial (empty store), never another error.
		if _, err := store.Verify(t.Context(), req.Key, req.Scope); !isDenied(err) {
			t.Fatalf("verify of an accepted request: %v", err)
		}
	})
}
