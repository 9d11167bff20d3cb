// Package testsupport holds what the tests and the local runner share: free ports on the
// loopback interface, logs that goroutines may write while a test reads them, waiting for a
// paused server to be stopped, and a child process's CPU profile.
//
// It imports no testing package, so that the binaries that link it (the local runner, through
// clickhouse/localserver and its own port picking, and the benchmark drivers) link nothing of
// the test framework.
package testsupport
