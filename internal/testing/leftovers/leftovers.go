// Package leftovers removes what a killed test run left behind.
//
// A test process that is killed (a `timeout`, a Ctrl-C on `go test`, a CI
// job cancelled) cannot run its clean-up: its API server, etcd, manager,
// and the lab's namespaces with HAProxy and keepalived inside, live on and
// load the machine, which makes the next run's timing tests fail. So every
// test process records the processes it starts (pid and start time, in a
// file named after itself), and the next run removes the records, the
// processes and the lab namespaces of owners that are gone. A lab of real
// nodes also leaves cgroups (the kubelets' roots, with the containers in
// them) and folders with mounts beneath them (kubelet volumes, containerd's
// snapshots): an owner records those too, and they are removed with it.
// Nothing is matched by a broad name: only recorded pids whose start time
// still matches, recorded cgroups and folders, and namespaces named after
// a dead owner's pid.
package leftovers

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hakeeper/hakeeper/internal/procstat"
)

// Dir holds one record per live test process.
var Dir = "/run/hakeeper-test"

// Process identifies a process across pid reuse.
type Process struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"startTime"`
	Command   string `json:"command"`
}

type record struct {
	Owner    Process   `json:"owner"`
	Children []Process `json:"children"`
	// Cgroups are cgroup paths relative to every hierarchy's root (a
	// kubelet's cgroupRoot): their processes are killed and the cgroups
	// removed.
	Cgroups []string `json:"cgroups,omitempty"`
	// Dirs are folders removed with every mount at or beneath them.
	Dirs []string `json:"dirs,omitempty"`
}

// Self describes the calling process.
func Self() (Process, error) { return Describe(os.Getpid()) }

// Describe reads a process's start time and command from /proc.
func Describe(pid int) (Process, error) {
	st, err := procstat.Read(pid)
	if err != nil {
		return Process{}, err
	}
	return Process{PID: pid, StartTime: st.StartTime, Command: st.Comm}, nil
}

// alive tells whether p is still the same running process.
func alive(p Process) bool {
	now, err := Describe(p.PID)
	return err == nil && now.StartTime == p.StartTime
}

func recordPath(owner Process) string {
	return filepath.Join(Dir, fmt.Sprintf("%d-%d.json", owner.PID, owner.StartTime))
}

// RecordChildren writes the calling process's current children to its
// record, replacing the last list. Call it after starting processes.
func RecordChildren() error {
	return update(func(self Process, r *record) error {
		children, err := childrenOf(self.PID)
		r.Children = children
		return err
	})
}

// RecordCgroups adds cgroups (paths relative to each hierarchy's root) to
// the calling process's record. Call it before anything runs in them.
func RecordCgroups(paths ...string) error {
	return update(func(_ Process, r *record) error {
		r.Cgroups = appendNew(r.Cgroups, paths...)
		return nil
	})
}

// RecordDirs adds folders to the calling process's record: they are
// removed with every mount beneath them. Call it before mounting there.
func RecordDirs(paths ...string) error {
	return update(func(_ Process, r *record) error {
		r.Dirs = appendNew(r.Dirs, paths...)
		return nil
	})
}

func appendNew(list []string, add ...string) []string {
	for _, a := range add {
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	return list
}

// recordMu serialises updates of the record: the lab starts nodes side by
// side.
var recordMu sync.Mutex

// update rewrites the calling process's record through change.
func update(change func(self Process, r *record) error) error {
	recordMu.Lock()
	defer recordMu.Unlock()
	self, err := Self()
	if err != nil {
		return err
	}
	r := record{Owner: self}
	if data, err := os.ReadFile(recordPath(self)); err == nil {
		_ = json.Unmarshal(data, &r)
	}
	if err := change(self, &r); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(Dir, 0o700); err != nil {
		return err
	}
	tmp := recordPath(self) + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, recordPath(self))
}

// Forget removes the calling process's record after a clean shutdown.
func Forget() {
	if self, err := Self(); err == nil {
		_ = os.Remove(recordPath(self))
	}
}

func childrenOf(parent int) ([]Process, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, err := parentOf(pid); err == nil && ppid == parent {
			if p, err := Describe(pid); err == nil {
				out = append(out, p)
			}
		}
	}
	return out, nil
}

func parentOf(pid int) (int, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "PPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("no PPid")
}

// Reap removes the leftovers of dead owners: their recorded processes
// (each with its process group, as they were started in their own), the
// network namespaces whose names match netnsOwner, a pattern whose first
// group is the owner's pid, then the recorded cgroups (with what still
// runs in them) and folders (with their mounts). It returns what it
// removed, for a log.
func Reap(netnsOwner *regexp.Regexp) []string {
	var removed []string
	files, _ := filepath.Glob(filepath.Join(Dir, "*.json"))
	var dead []record
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var r record
		if json.Unmarshal(data, &r) != nil || alive(r.Owner) {
			continue
		}
		for _, c := range r.Children {
			if alive(c) {
				killGroup(c.PID)
				removed = append(removed, fmt.Sprintf("process %d (%s) of dead test process %d", c.PID, c.Command, r.Owner.PID))
			}
		}
		dead = append(dead, r)
		_ = os.Remove(f)
	}
	if netnsOwner != nil {
		removed = append(removed, reapNamespaces(netnsOwner)...)
	}
	for _, r := range dead {
		for _, cg := range r.Cgroups {
			if n := RemoveCgroup(cg); n >= 0 {
				removed = append(removed, fmt.Sprintf("cgroup %s (%d processes) of dead test process %d", cg, n, r.Owner.PID))
			}
		}
		for _, d := range r.Dirs {
			if _, err := os.Stat(d); err == nil {
				n := RemoveDir(d)
				removed = append(removed, fmt.Sprintf("folder %s (%d mounts) of dead test process %d", d, n, r.Owner.PID))
			}
		}
	}
	return removed
}

// Running tells whether pid is a process that has not exited (a zombie
// has).
func Running(pid int) bool {
	st, err := procstat.Read(pid)
	return err == nil && !st.Zombie()
}

// killGroup ends a process and its group: SIGTERM, then SIGKILL if it is
// still there after a few seconds.
func killGroup(pid int) {
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 50 {
		if !Running(pid) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

func reapNamespaces(owner *regexp.Regexp) []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var removed []string
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		name := fields[0]
		m := owner.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		pid, err := strconv.Atoi(m[1])
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue // not ours to judge, or its owner still runs
		}
		KillNamespace(name)
		removed = append(removed, "network namespace "+name)
	}
	return removed
}

// KillNamespace kills every process inside a network namespace, then
// deletes it.
func KillNamespace(name string) {
	for range 3 {
		out, _ := exec.Command("ip", "netns", "pids", name).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		self := os.Getpid()
		killed := 0
		for _, s := range pids {
			// The caller may have a thread in the namespace (a client that
			// dialled from it): never itself.
			if pid, err := strconv.Atoi(s); err == nil && pid != self {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed++
			}
		}
		if killed == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
}
