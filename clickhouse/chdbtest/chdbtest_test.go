package chdbtest

import (
	"strings"
	"testing"
)

func TestEngineAnswersAndNamesErrors(t *testing.T) {
	e := Start(t)
	v, err := e.Version()
	if err != nil || !strings.HasPrefix(v, "26.") {
		t.Fatalf("version %q, %v", v, err)
	}
	if _, err := e.Query("SELECT no_such_column"); err == nil || !strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("error %v", err)
	}
	r, err := e.Query("SELECT number, toString(number) FROM numbers(3)")
	if err != nil || len(r.Data) != 3 || r.Meta[1].Type != "String" {
		t.Fatalf("%+v, %v", r, err)
	}
}
