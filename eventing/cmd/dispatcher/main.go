// Command dispatcher delivers events from the broker's Kafka topic to the functions as the
// Knative Kafka broker would, reading the same Trigger manifests, for running trustplane on
// one machine. Its configuration is in eventing/dispatcher's README.
package main

import (
	"github.com/trustplane/trustplane/eventing/dispatcher"
	"github.com/trustplane/trustplane/functions/runtime"
)

func main() { runtime.Run("dispatcher", dispatcher.New) }
