package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/hakeeper/hakeeper/internal/procstat"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on
// every Linux architecture Go builds for.
const clockTicks = 100

// process is what the bench reads of one process.
type process struct {
	pid  int
	comm string
	// cpu is user and system time, with that of reaped children (runc
	// exec, probe processes), in seconds.
	cpu float64
	// cgroup is its cpuacct cgroup, relative to the hierarchy's root.
	cgroup string
	netns  uint64
}

// readProcess reads /proc/<pid>; false when it is gone.
func readProcess(pid int) (process, bool) {
	p := process{pid: pid}
	ps, err := procstat.Read(pid)
	if err != nil {
		return p, false
	}
	p.comm = ps.Comm
	// With reaped children: runc exec and probe processes count.
	ticks := float64(ps.UTime + ps.STime + ps.CUTime + ps.CSTime)
	p.cpu = ticks / clockTicks
	p.cgroup = cpuacctCgroup(pid)
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st); err == nil {
		p.netns = st.Ino
	}
	return p, true
}

// cpuacctCgroup is the process's cgroup in the cpuacct hierarchy.
func cpuacctCgroup(pid int) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		parts := strings.SplitN(s.Text(), ":", 3)
		if len(parts) == 3 && strings.Contains(","+parts[1]+",", ",cpuacct,") {
			return parts[2]
		}
	}
	return ""
}

// allProcesses reads every process of the machine.
func allProcesses() []process {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProcess(pid); ok {
			out = append(out, p)
		}
	}
	return out
}

// inode is a namespace file's inode, which identifies the namespace.
func inode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// cpuacctRoot is where the cpuacct hierarchy is mounted.
func cpuacctRoot() (string, error) {
	for _, dir := range []string{"/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpu,cpuacct"} {
		if _, err := os.Stat(filepath.Join(dir, "cpuacct.usage")); err == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no cgroup v1 cpuacct hierarchy (the lab's nodes run on cgroup v1)")
}

// cgroupCPU is a cgroup's CPU time in seconds, its descendants included.
func cgroupCPU(root, cgroup string) (float64, error) {
	data, err := os.ReadFile(filepath.Join(root, cgroup, "cpuacct.usage"))
	if err != nil {
		return 0, err
	}
	ns, err := strconv.ParseFloat(strings.TrimSpace(string(data)), 64)
	return ns / 1e9, err
}

// cgroupTasks counts a cgroup's processes and threads, its descendants
// included, and returns the processes' pids.
func cgroupTasks(root, cgroup string) (pids []int, threads int) {
	_ = filepath.WalkDir(filepath.Join(root, cgroup), func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if data, err := os.ReadFile(filepath.Join(path, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
		}
		if data, err := os.ReadFile(filepath.Join(path, "tasks")); err == nil {
			threads += len(strings.Fields(string(data)))
		}
		return nil
	})
	return pids, threads
}

// memoryOf is a process's memory in bytes from smaps_rollup: private
// (clean and dirty: what it alone maps, which counts a binary's pages as
// long as no other process on the node maps them) and anonymous (Pss_Anon:
// heap, stacks, data, a copy-on-write page shared after fork split between
// its sharers), which no other LoadBalancer's processes can share.
func memoryOf(pid int) (private, anon int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(fields[1], 10, 64)
		switch {
		case strings.HasPrefix(fields[0], "Private_"):
			private += kb * 1024
		case fields[0] == "Pss_Anon:":
			anon += kb * 1024
		}
	}
	return private, anon
}

// privateMemory is memoryOf's private memory.
func privateMemory(pid int) int64 {
	private, _ := memoryOf(pid)
	return private
}
