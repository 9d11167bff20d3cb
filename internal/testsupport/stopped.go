package testsupport

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"time"
)

// WaitStopped waits until every thread of every process in process group pgid is stopped, as
// each is some time after a SIGSTOP to the group: kill returns once the signal is sent, and a
// thread already running (a server answering a connection) goes on until it is stopped. A
// test that pauses a server and then expects no answer needs the pause to have happened.
func WaitStopped(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		stopped, err := groupStopped(pgid)
		if err != nil {
			return err
		}
		if stopped {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d not stopped %s after SIGSTOP", pgid, timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// groupStopped reports whether the group has a process and all its threads are stopped.
func groupStopped(pgid int) (bool, error) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return false, err
	}
	found := false
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil {
			continue
		}
		state, group, ok := readStat("/proc/" + p.Name() + "/stat")
		if !ok || group != pgid {
			continue
		}
		found = true
		if state != 'T' && state != 't' {
			return false, nil
		}
		tasks, err := os.ReadDir("/proc/" + p.Name() + "/task")
		if err != nil {
			continue // the process has just exited
		}
		for _, task := range tasks {
			if state, _, ok := readStat("/proc/" + p.Name() + "/task/" + task.Name() + "/stat"); ok && state != 'T' && state != 't' {
				return false, nil
			}
		}
	}
	if !found {
		return false, fmt.Errorf("no process in group %d", pgid)
	}
	return true, nil
}

// readStat reads a /proc stat file's state and process group. The command name before them is
// in parentheses and may itself hold spaces and parentheses, so the fields are counted from
// the last ')'.
func readStat(path string) (state byte, pgid int, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	fields := bytes.Fields(b[i+1:])
	if len(fields) < 3 || len(fields[0]) != 1 {
		return 0, 0, false
	}
	pgid, err = strconv.Atoi(string(fields[2]))
	if err != nil {
		return 0, 0, false
	}
	return fields[0][0], pgid, true
}
