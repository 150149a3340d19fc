package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/leftovers"
)

// RunningContainer is a container that runs on a node, as its containerd
// knows it.
type RunningContainer struct {
	ID        string
	Name      string // the container's name in the pod
	Pod       string
	Namespace string
	PodUID    string
	PID       int // of its first process, in the host's pid namespace
}

// runningContainers reads the node's running containers from containerd's
// task folders: each holds the container's OCI spec, whose annotations
// name its pod, and the pid of its first process. Files, not the API
// server nor containerd's socket: faults are injected when either may be
// gone.
func (n *node) runningContainers() ([]RunningContainer, error) {
	dir := n.path("containerd", "state", "io.containerd.runtime.v2.task", "k8s.io")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []RunningContainer
	for _, e := range entries {
		var spec struct {
			Annotations map[string]string `json:"annotations"`
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "config.json"))
		if err != nil || json.Unmarshal(data, &spec) != nil {
			continue
		}
		a := spec.Annotations
		if a["io.kubernetes.cri.container-type"] != "container" {
			continue // a pod's sandbox (pause)
		}
		pidData, err := os.ReadFile(filepath.Join(dir, e.Name(), "init.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(pidData)))
		if err != nil || !leftovers.Running(pid) {
			continue
		}
		out = append(out, RunningContainer{
			ID: e.Name(), Name: a["io.kubernetes.cri.container-name"], Pod: a["io.kubernetes.cri.sandbox-name"],
			Namespace: a["io.kubernetes.cri.sandbox-namespace"], PodUID: a["io.kubernetes.cri.sandbox-uid"], PID: pid,
		})
	}
	return out, nil
}

// Container finds the running container of a LoadBalancer's data-plane
// pod on a node (a DaemonSet's pod is named after it with a random
// suffix).
func (l *Lab) Container(nodeName string, lb *v1alpha1.LoadBalancer, container string) (RunningContainer, error) {
	n, err := l.node(nodeName)
	if err != nil {
		return RunningContainer{}, err
	}
	podName := regexp.MustCompile("^" + regexp.QuoteMeta(desired.NamesFor(lb).DaemonSet) + "-[a-z0-9]{5}$")
	all, err := n.runningContainers()
	if err != nil {
		return RunningContainer{}, err
	}
	for _, c := range all {
		if c.Namespace == OperatorNamespace && c.Name == container && podName.MatchString(c.Pod) {
			return c, nil
		}
	}
	return RunningContainer{}, fmt.Errorf("no running %s container of %s/%s on %s", container, lb.Namespace, lb.Name, nodeName)
}

// Kill kills a container of a LoadBalancer's pod on a node, as a crash
// would: SIGKILL to its first process (containerd then ends the rest of
// the container). The node's kubelet restarts it with its own back-off.
func (l *Lab) Kill(nodeName string, lb *v1alpha1.LoadBalancer, container string) error {
	c, err := l.Container(nodeName, lb, container)
	if err != nil {
		return err
	}
	return syscall.Kill(c.PID, syscall.SIGKILL)
}

// PodContainers lists the running containers of a pod, on its node.
func (l *Lab) PodContainers(pod corev1.Pod) ([]RunningContainer, error) {
	n, err := l.node(pod.Spec.NodeName)
	if err != nil {
		return nil, err
	}
	all, err := n.runningContainers()
	if err != nil {
		return nil, err
	}
	var out []RunningContainer
	for _, c := range all {
		if c.Namespace == pod.Namespace && c.Pod == pod.Name && c.PodUID == string(pod.UID) {
			out = append(out, c)
		}
	}
	return out, nil
}

// PodVolume is a short path, on the host, to an emptyDir volume of a
// LoadBalancer's data-plane pod on a node (desired's Volume* names: HAProxy's
// sockets are in VolumeHAProxyRun, the tracked files in
// VolumeKeepalivedRun and VolumeHealth). Where the kubelet made the volume is
// too long a path for a unix socket (108 bytes), so the path is a symlink
// to it in the system's temporary folder, removed with the lab.
func (l *Lab) PodVolume(nodeName string, lb *v1alpha1.LoadBalancer, volume string) (string, error) {
	n, err := l.node(nodeName)
	if err != nil {
		return "", err
	}
	// The agent runs as long as the pod does.
	c, err := l.Container(nodeName, lb, desired.ContainerAgent)
	if err != nil {
		return "", err
	}
	target := n.path("kubelet", "pods", c.PodUID, "volumes", "kubernetes.io~empty-dir", volume)
	link := filepath.Join(os.TempDir(), fmt.Sprintf("%s%.8s-%s", l.net.prefix, c.PodUID, volume))
	if current, err := os.Readlink(link); err == nil && current == target {
		return link, nil
	}
	_ = os.Remove(link)
	if err := leftovers.RecordDirs(link); err != nil {
		return "", err
	}
	return link, os.Symlink(target, link)
}

// Exec runs a command in a running container as the container's own
// process would run: its user, capabilities, seccomp filter, namespaces
// and mounts (containerd's `ctr task exec`, which takes the container's
// process spec), and returns what it printed.
func (l *Lab) Exec(ctx context.Context, nodeName string, c RunningContainer, argv ...string) ([]byte, error) {
	n, err := l.node(nodeName)
	if err != nil {
		return nil, err
	}
	id := fmt.Sprintf("hk-test-%d", time.Now().UnixNano())
	args := append([]string{"--address", n.socket(), "-n", "k8s.io", "task", "exec", "--exec-id", id, c.ID}, argv...)
	return exec.CommandContext(ctx, "ctr", args...).CombinedOutput()
}
