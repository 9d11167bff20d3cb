package testsupport

import (
	"os"
	"runtime/pprof"
)

// CPUProfile writes a CPU profile of this process to the file the environment variable env
// names, when it names one, until stop is called: a benchmark's child process profiles
// itself this way. Without the variable, stop does nothing.
func CPUProfile(env string) (stop func(), err error) {
	path := os.Getenv(env)
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
