// Package manifests renders the kustomize overlays in deploy/overlays, decodes every object
// strictly (an unknown field is an error), validates the Knative objects as their admission
// webhooks would (defaults, then Validate), and cross-checks the objects against each other and
// against the code: every Trigger's subscriber exists, every variable a function's Config
// requires is provided, every referenced Secret and ConfigMap exists, replication factors fit the
// broker count, storage matches the sizing, and the Kafka topics match kafka/topics.go.
//
// Strimzi, Altinity and cert-manager kinds have no Go module among this project's
// dependencies: this package declares the fields its manifests use (types.go), so strict
// decoding rejects anything else.
package manifests
