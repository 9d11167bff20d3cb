// Package testsupport holds what the tests and the local runner share: free ports on the
// loopback interface and logs that goroutines may write while a test reads them.
//
// It imports no testing package, so that the binaries that pick ports (the local runner and
// the benchmark drivers) link nothing of the test framework.
package testsupport
