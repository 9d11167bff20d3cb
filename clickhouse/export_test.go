package clickhouse

// What the tests of package clickhouse_test, which read rows back through chtest/readback,
// use of this package's test helpers.
var (
	OpenMigrated      = openMigrated
	BenchObservations = benchObservations
)

// ServerAddr is the address of the package's test server.
func ServerAddr() string { return server.Addr() }
