package authclient

import (
	"strings"
	"testing"
)

func TestGenerateAndParseKey(t *testing.T) {
	key, id, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(key) != 64 || !strings.HasPrefix(key, "tp_"+id+"_") {
		t.Fatalf("key shape: len %d, id %s", len(key), id)
	}
	got, err := ParseKey(key)
	if err != nil || got != id {
		t.Fatalf("ParseKey = %q, %v; want %q", got, err, id)
	}
	other, _, _ := GenerateKey()
	if other == key {
		t.Fatal("two generated keys are equal")
	}
}

func TestParseKeyRejects(t *testing.T) {
	key, _, _ := GenerateKey()
	for name, bad := range map[string]string{
		"empty":          "",
		"no prefix":      "xx" + key[2:],
		"upper case":     strings.ToUpper(key),
		"short":          key[:63],
		"long":           key + "a",
		"bad separator":  key[:11] + "-" + key[12:],
		"bad id char":    "tp_0" + key[4:],
		"bad secret chr": key[:63] + "1",
		"whitespace":     " " + key[1:],
	} {
		if _, err := ParseKey(bad); err != ErrMalformedKey {
			t.Errorf("%s: ParseKey err = %v, want ErrMalformedKey", name, err)
		}
		if strings.Contains(ErrMalformedKey.Error(), key[12:]) {
			t.Errorf("%s: error echoes the secret", name)
		}
	}
}
