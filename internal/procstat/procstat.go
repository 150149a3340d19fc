// Package procstat reads /proc/<pid>/stat: a process's command, state,
// parent, CPU times and start time. The lab's leftover cleanup, keepalived's
// supervisor and the idle bench all need some of it; one parser serves
// them. Standard library only, for the supervisors' small binary.
package procstat

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is what /proc/<pid>/stat says of a process.
type Stat struct {
	PID int
	// Comm is the command name (at most 15 bytes; it may hold spaces and
	// parentheses).
	Comm string
	// State is one letter: R running, S sleeping, Z zombie, ...
	State byte
	PPID  int
	// UTime, STime are the process's user and system CPU time, CUTime and
	// CSTime those of its reaped children, in clock ticks (USER_HZ).
	UTime, STime, CUTime, CSTime uint64
	// StartTime is when it started, in clock ticks after boot: with the
	// pid, it names one process across pid reuse.
	StartTime uint64
}

// Zombie tells whether the process has exited and waits to be reaped.
func (s Stat) Zombie() bool { return s.State == 'Z' }

// Read reads /proc/<pid>/stat.
func Read(pid int) (Stat, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return Stat{}, err
	}
	return Parse(pid, string(data))
}

// Parse parses the text of /proc/<pid>/stat: "pid (comm) state ppid ...".
// The command may hold spaces and parentheses, so the fields are those
// after its last closing parenthesis.
func Parse(pid int, text string) (Stat, error) {
	open, end := strings.IndexByte(text, '('), strings.LastIndexByte(text, ')')
	if open < 0 || end < open {
		return Stat{}, fmt.Errorf("/proc/%d/stat: no command in parentheses", pid)
	}
	f := strings.Fields(text[end+1:])
	// f[0] is field 3 (state); starttime is field 22.
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("/proc/%d/stat: %d fields after the command, want 20 or more", pid, len(f))
	}
	s := Stat{PID: pid, Comm: text[open+1 : end], State: f[0][0]}
	var err error
	if s.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("/proc/%d/stat: ppid: %w", pid, err)
	}
	for _, v := range []struct {
		into  *uint64
		index int
		name  string
	}{{&s.UTime, 11, "utime"}, {&s.STime, 12, "stime"}, {&s.CUTime, 13, "cutime"}, {&s.CSTime, 14, "cstime"}, {&s.StartTime, 19, "starttime"}} {
		// cutime and cstime are signed in the kernel's format; never
		// negative in practice.
		n, err := strconv.ParseInt(f[v.index], 10, 64)
		if err != nil || n < 0 {
			return Stat{}, fmt.Errorf("/proc/%d/stat: %s %q", pid, v.name, f[v.index])
		}
		*v.into = uint64(n)
	}
	return s, nil
}
