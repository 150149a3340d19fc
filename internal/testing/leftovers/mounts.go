package leftovers

import (
	"bufio"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// mount is one line of /proc/self/mountinfo.
type mount struct {
	point  string
	fsType string
}

func mounts() ([]mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mount
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for s.Scan() {
		// id parent major:minor root point options [optional...] - type source super-options
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if sep < 5 || sep+1 >= len(fields) {
			continue
		}
		out = append(out, mount{point: unescape(fields[4]), fsType: fields[sep+1]})
	}
	return out, s.Err()
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CgroupHierarchies lists where the cgroup hierarchies are mounted (each
// cgroup v1 controller, and the v2 tree if there is one).
func CgroupHierarchies() ([]string, error) {
	all, err := mounts()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range all {
		if m.fsType == "cgroup" || m.fsType == "cgroup2" {
			out = append(out, m.point)
		}
	}
	return out, nil
}

// RemoveCgroup kills every process in the cgroup rel (relative to each
// hierarchy's root) and its descendants, then removes them, deepest
// first. It returns how many processes it killed, or -1 when the cgroup
// existed in no hierarchy.
func RemoveCgroup(rel string) int {
	hierarchies, err := CgroupHierarchies()
	if err != nil {
		return -1
	}
	found, killed := false, map[int]bool{}
	for _, h := range hierarchies {
		root := filepath.Join(h, rel)
		if _, err := os.Stat(root); err != nil {
			continue
		}
		found = true
		// A process may fork while the others die: a few rounds, bounded.
		for range 20 {
			pids := cgroupProcs(root)
			if len(pids) == 0 {
				break
			}
			for _, pid := range pids {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed[pid] = true
			}
			time.Sleep(100 * time.Millisecond)
		}
		dirs := subdirs(root)
		for i := len(dirs) - 1; i >= 0; i-- {
			// A dying process leaves its cgroup a moment after the signal.
			for range 20 {
				if err := unix.Rmdir(dirs[i]); err == nil || os.IsNotExist(err) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	if !found {
		return -1
	}
	return len(killed)
}

// cgroupProcs lists the processes in a cgroup and its descendants.
func cgroupProcs(root string) []int {
	var pids []int
	for _, d := range subdirs(root) {
		data, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(data)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// subdirs lists root and the folders beneath it, parents before children.
func subdirs(root string) []string {
	var out []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// RemoveDir unmounts everything mounted at or beneath dir (see Unmount),
// then removes the folder. It returns how many mounts it undid.
func RemoveDir(dir string) int {
	n := Unmount(dir)
	_ = os.RemoveAll(dir)
	return n
}

// Unmount undoes every mount at or beneath dir, deepest first (lazily, so
// a mount still in use goes once released). It returns how many it undid.
func Unmount(dir string) int {
	dir = filepath.Clean(dir)
	undone := 0
	// Mounts may be stacked on one point: a few rounds, bounded.
	for range 10 {
		all, err := mounts()
		if err != nil {
			break
		}
		var under []string
		for _, m := range all {
			if m.point == dir || strings.HasPrefix(m.point, dir+"/") {
				under = append(under, m.point)
			}
		}
		if len(under) == 0 {
			break
		}
		// Deepest first: a longer path is never a parent of a shorter one.
		slices.SortFunc(under, func(a, b string) int { return len(b) - len(a) })
		for _, p := range under {
			if unix.Unmount(p, unix.MNT_DETACH) == nil {
				undone++
			}
		}
	}
	return undone
}
