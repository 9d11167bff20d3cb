package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
)

type options struct {
	dir, bin, triggers                                string
	ingestPort, authPort, persistPort, dispatcherPort int
	routerPort, guardPort, queryPort, batchPort       int
	publicHost                                        string // ingest's, router's and query's address; the rest bind 127.0.0.1
	pingSources                                       string // the PingSource manifests whose schedules the runner follows
	kafkaBrokers, clickhouseAddr                      string
	kafkaPort, clickhousePort, clickhouseHTTPPort     int // of the embedded broker and the local server; 0: a free one (tests)
	clickhouseInterserverPort                         int
	tlsCert, tlsKey                                   string        // ingest serves HTTPS with these when set
	ready                                             chan<- string // receives the demo key once everything is ready (tests)
	started                                           func(child string, pid int)
}

// loopback is where everything but ingest and router listens: nothing else is meant to be
// reached from another machine (persist, for one, takes the tenant from its deliveries).
const loopback = "127.0.0.1"

// flagEnv names each flag's environment variable, read when the flag is not given, so that
// `make run INGEST_PORT=9080` does what `make run ARGS="-ingest-port 9080"` does. None is a
// variable a function reads (the functions inherit the runner's environment), except
// DISPATCHER_TRIGGERS, which the runner hands to the dispatcher.
var flagEnv = map[string]string{
	"dir":                         "LOCAL_DIR",
	"bin":                         "LOCAL_BIN",
	"triggers":                    "DISPATCHER_TRIGGERS",
	"ingest-port":                 "INGEST_PORT",
	"auth-port":                   "AUTH_PORT",
	"persist-port":                "PERSIST_PORT",
	"dispatcher-port":             "DISPATCHER_PORT",
	"router-port":                 "ROUTER_PORT",
	"query-port":                  "QUERY_PORT",
	"batch-port":                  "BATCH_PORT",
	"pingsources":                 "LOCAL_PINGSOURCES",
	"guard-port":                  "GUARD_PORT",
	"kafka-port":                  "KAFKA_PORT",
	"clickhouse-port":             "CLICKHOUSE_PORT",
	"clickhouse-http-port":        "CLICKHOUSE_HTTP_PORT",
	"clickhouse-interserver-port": "CLICKHOUSE_INTERSERVER_PORT",
	"public-host":                 "PUBLIC_HOST",
	"tls-cert":                    "INGEST_TLS_CERT",
	"tls-key":                     "INGEST_TLS_KEY",
}

// parseFlags parses the command line over the environment's values over the defaults, and
// returns the flag set it used (tests read each flag's value from it).
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*flag.FlagSet, *options, error) {
	o := &options{}
	fs := flag.NewFlagSet("local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.dir, "dir", ".run", "directory for local state: Kafka and ClickHouse data, keys, the pepper, ports")
	fs.StringVar(&o.bin, "bin", "bin", "directory holding the binaries (make build)")
	fs.StringVar(&o.triggers, "triggers", "eventing/config", "Trigger manifests the dispatcher follows")
	fs.IntVar(&o.ingestPort, "ingest-port", 8080, "ingest's port (public)")
	fs.IntVar(&o.authPort, "auth-port", 8081, "auth's port")
	fs.IntVar(&o.persistPort, "persist-port", 8082, "persist's port")
	fs.IntVar(&o.dispatcherPort, "dispatcher-port", 8083, "the dispatcher's port (health and metrics)")
	fs.IntVar(&o.routerPort, "router-port", 8084, "router's port (public OpenAI-compatible LLM gateway)")
	fs.IntVar(&o.guardPort, "guard-port", 8085, "guard's port (security checks on telemetry)")
	fs.IntVar(&o.queryPort, "query-port", 8086, "query's port (public analytics API)")
	fs.IntVar(&o.batchPort, "batch-port", 8087, "batch's port (scheduled work)")
	fs.StringVar(&o.pingSources, "pingsources", "deploy/base/functions/batch.yaml", "the PingSource manifests whose schedules the runner sends to batch")
	// Kafka's and ClickHouse's own ports plus 10000: stable across runs, so that commands
	// pasted from one banner still work after the next start, and clear of a broker or server
	// of their own on this machine.
	fs.IntVar(&o.kafkaPort, "kafka-port", 19092, "the embedded Kafka broker's port (unused with KAFKA_BROKERS)")
	fs.IntVar(&o.clickhousePort, "clickhouse-port", 19000, "the local ClickHouse server's native-protocol port (unused with CLICKHOUSE_ADDR)")
	fs.IntVar(&o.clickhouseHTTPPort, "clickhouse-http-port", 18123, "the local ClickHouse server's HTTP port")
	fs.IntVar(&o.clickhouseInterserverPort, "clickhouse-interserver-port", 19009, "the local ClickHouse server's interserver port")
	fs.StringVar(&o.publicHost, "public-host", loopback,
		"address ingest, router and query listen on (0.0.0.0: every interface); auth, persist, guard, the dispatcher, batch, Kafka and ClickHouse always listen on 127.0.0.1")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "certificate file: ingest serves HTTPS (with -tls-key)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "private key file for -tls-cert")

	var errs []error
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	for _, name := range names {
		f := fs.Lookup(name)
		env, ok := flagEnv[name]
		if !ok {
			errs = append(errs, fmt.Errorf("flag -%s has no environment variable", name))
			continue
		}
		f.Usage += " [$" + env + "]"
		if v := getenv(env); v != "" {
			if err := fs.Set(name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q (for -%s): %v", env, v, name, err))
			}
		}
	}
	// The variables are reported first: an error in them could explain one in the flags.
	if err := errors.Join(errs...); err != nil {
		return fs, o, err
	}
	if err := fs.Parse(args); err != nil {
		return fs, o, err
	}
	if fs.NArg() > 0 {
		return fs, o, fmt.Errorf("unexpected arguments %q (flags are -name value; see -h)", strings.Join(fs.Args(), " "))
	}
	if net.ParseIP(o.publicHost) == nil {
		return fs, o, fmt.Errorf("-public-host or PUBLIC_HOST must be an IP address such as 127.0.0.1 or 0.0.0.0, got %q", o.publicHost)
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return fs, o, errors.New("-tls-cert and -tls-key (INGEST_TLS_CERT and INGEST_TLS_KEY) go together")
	}
	o.kafkaBrokers = getenv("KAFKA_BROKERS")
	o.clickhouseAddr = getenv("CLICKHOUSE_ADDR")
	return fs, o, nil
}

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	_, o, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return options{}, err
	}
	return *o, nil
}
