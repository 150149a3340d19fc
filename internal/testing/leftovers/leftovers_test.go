package leftovers

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func startSleeper(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// exited waits (bounded) for a child to be gone.
func exited(cmd *exec.Cmd) bool {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(10 * time.Second):
		return false
	}
}

func TestReapKillsTheRecordedProcessesOfADeadOwnerOnly(t *testing.T) {
	Dir = t.TempDir()
	orphan := startSleeper(t, "sleep", "60")
	kept := startSleeper(t, "sleep", "60")
	orphanInfo, err := Describe(orphan.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	keptInfo, _ := Describe(kept.Process.Pid)
	self, _ := Self()
	write := func(owner Process, children ...Process) string {
		data, _ := json.Marshal(record{Owner: owner, Children: children})
		path := recordPath(owner)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	deadRecord := write(Process{PID: deadPID(t), StartTime: 1}, orphanInfo)
	liveRecord := write(self, keptInfo)
	// A stale entry whose pid was reused must be left alone.
	stale := keptInfo
	stale.StartTime++
	staleRecord := write(Process{PID: deadPID(t), StartTime: 2}, stale)

	removed := Reap(nil)

	if len(removed) != 1 {
		t.Fatalf("removed %q, want just the orphan", removed)
	}
	if !exited(orphan) {
		t.Error("the dead owner's process still runs")
	}
	if err := syscall.Kill(kept.Process.Pid, 0); err != nil {
		t.Error("a live owner's process (or a reused pid) was killed")
	}
	for path, want := range map[string]bool{deadRecord: false, staleRecord: false, liveRecord: true} {
		if _, err := os.Stat(path); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(path), err == nil, want)
		}
	}
}

func TestRecordChildrenListsThem(t *testing.T) {
	Dir = t.TempDir()
	child := startSleeper(t, "sleep", "60")
	if err := RecordChildren(); err != nil {
		t.Fatal(err)
	}
	self, _ := Self()
	data, err := os.ReadFile(recordPath(self))
	if err != nil {
		t.Fatal(err)
	}
	var r record
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range r.Children {
		found = found || c.PID == child.Process.Pid
	}
	if !found || r.Owner != self {
		t.Fatalf("record %+v lacks child %d", r, child.Process.Pid)
	}
	Forget()
	if _, err := os.Stat(recordPath(self)); !os.IsNotExist(err) {
		t.Fatal("Forget left the record")
	}
}

func TestReapRemovesNamespacesOfDeadOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	Dir = t.TempDir()
	dead := fmt.Sprintf("hkleftovertest%d-node", deadPID(t))
	live := fmt.Sprintf("hkleftovertest%d-node", os.Getpid())
	for _, ns := range []string{dead, live} {
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	inside := startSleeper(t, "ip", "netns", "exec", dead, "sleep", "60")

	removed := Reap(regexp.MustCompile(`^hkleftovertest([0-9]+)-`))

	if len(removed) != 1 {
		t.Fatalf("removed %q, want the dead owner's namespace", removed)
	}
	if !exited(inside) {
		t.Error("the process inside the dead owner's namespace still runs")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if regexp.MustCompile(`(?m)^` + dead + `\b`).Match(out) {
		t.Error("the dead owner's namespace is still there")
	}
	if !regexp.MustCompile(`(?m)^` + live + `\b`).Match(out) {
		t.Error("a live owner's namespace was removed")
	}
}

// TestReapRemovesCgroupsAndMountsOfDeadOwners: a killed lab leaves a
// kubelet's cgroup root with containers in it and folders with mounts
// (volumes, snapshots); a dead owner's recorded ones are removed with what
// runs and is mounted there, a live owner's are kept.
func TestReapRemovesCgroupsAndMountsOfDeadOwners(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: cgroups and mounts")
	}
	hierarchies, err := CgroupHierarchies()
	if err != nil || len(hierarchies) == 0 {
		t.Skipf("no cgroup hierarchy mounted: %v", err)
	}
	Dir = t.TempDir()
	cgroup := fmt.Sprintf("/hakeeper-leftovers-test-%d", os.Getpid())
	keptCgroup := cgroup + "-kept"
	// The pids hierarchy (or whichever comes first) holds a process in a
	// child cgroup, as a container sits below a kubelet's cgroup root.
	h := hierarchies[0]
	for _, c := range []string{cgroup + "/pod/container", keptCgroup} {
		if err := os.MkdirAll(filepath.Join(h, c), 0o755); err != nil {
			t.Skipf("cannot create a cgroup in %s: %v", h, err)
		}
	}
	t.Cleanup(func() { RemoveCgroup(cgroup); RemoveCgroup(keptCgroup) })
	inCgroup := startSleeper(t, "sleep", "60")
	if err := os.WriteFile(filepath.Join(h, cgroup, "pod", "container", "cgroup.procs"), []byte(fmt.Sprint(inCgroup.Process.Pid)), 0o644); err != nil {
		t.Skipf("cannot move a process into %s: %v", h, err)
	}
	dir := filepath.Join(t.TempDir(), "lab")
	mountPoint := filepath.Join(dir, "node-a", "kubelet", "volume")
	if err := os.MkdirAll(mountPoint, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "leftovers-test", mountPoint).CombinedOutput(); err != nil {
		t.Skipf("cannot mount: %v: %s", err, out)
	}
	t.Cleanup(func() { Unmount(dir) })
	self, _ := Self()
	write := func(r record) {
		data, _ := json.Marshal(r)
		if err := os.WriteFile(recordPath(r.Owner), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(record{Owner: Process{PID: deadPID(t), StartTime: 1}, Cgroups: []string{cgroup}, Dirs: []string{dir}})
	write(record{Owner: self, Cgroups: []string{keptCgroup}})

	removed := Reap(nil)

	t.Logf("removed %q", removed)
	if len(removed) != 2 {
		t.Errorf("removed %q, want the cgroup and the folder", removed)
	}
	if !exited(inCgroup) {
		t.Error("the process in the dead owner's cgroup still runs")
	}
	if _, err := os.Stat(filepath.Join(h, cgroup)); !os.IsNotExist(err) {
		t.Errorf("the dead owner's cgroup is still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h, keptCgroup)); err != nil {
		t.Errorf("a live owner's cgroup was removed: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the dead owner's folder is still there: %v", err)
	}
	all, _ := mounts()
	for _, m := range all {
		if strings.HasPrefix(m.point, dir) {
			t.Errorf("still mounted: %s", m.point)
		}
	}
}
