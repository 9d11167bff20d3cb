// Command embedded-kafka runs trustplane's embedded Kafka-protocol broker on
// its own, for local runs that want Kafka in a separate process.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/trustplane/trustplane/kafka/embedded"
)

func main() {
	port := flag.Int("port", 9092, "port to listen on (0 picks a free one)")
	dataDir := flag.String("data-dir", "", "directory that keeps messages and offsets across restarts (empty: memory only)")
	partitions := flag.Int("partitions", 1, "partitions of topics created on first use")
	syncWrites := flag.Bool("sync-writes", false, "fsync every batch before acknowledging it")
	flag.Parse()

	if *partitions < 1 || *partitions > 1<<15 {
		fmt.Fprintf(os.Stderr, "embedded-kafka: -partitions must be between 1 and 32768, got %d\n", *partitions)
		os.Exit(2)
	}
	e, err := embedded.Start(embedded.Config{
		Ports:      []int{*port},
		DataDir:    *dataDir,
		SyncWrites: *syncWrites,
		Partitions: int32(*partitions),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "embedded-kafka:", err)
		os.Exit(1)
	}
	fmt.Println("embedded-kafka: listening on", strings.Join(e.Addrs(), ","))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	e.Close()
}
