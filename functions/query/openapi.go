package query

import (
	_ "embed"
	"encoding/json"

	"sigs.k8s.io/yaml"
)

// openAPIYAML is the API's OpenAPI 3.1 document; GET /v1/openapi.json serves it as JSON. The
// tests check every route against it and validate real answers with it.
//
//go:embed openapi.yaml
var openAPIYAML []byte

var openAPIJSON = func() []byte {
	j, err := yaml.YAMLToJSON(openAPIYAML)
	if err != nil || !json.Valid(j) {
		panic("query: openapi.yaml is not valid YAML: " + err.Error())
	}
	return j
}()
