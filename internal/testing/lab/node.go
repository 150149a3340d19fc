package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/hakeeper/hakeeper/internal/testing/leftovers"
)

// node is a lab node: a network namespace with its own containerd and
// kubelet, as a machine of a cluster would have, with its own folders,
// sockets, cgroups and CNI network so that three of them share the host
// without meeting.
type node struct {
	name  string
	index int
	addr  string
	ns    string // network namespace
	dir   string
	// cgroupRoot is the kubelet's cgroup root, a distinct one per node
	// (created under every hierarchy before the kubelet starts).
	cgroupRoot string

	containerd *process
	kubelet    *supervised
	kubeProxy  *supervised
}

func (n *node) path(elem ...string) string { return filepath.Join(append([]string{n.dir}, elem...)...) }

// socket is containerd's CRI and API socket.
func (n *node) socket() string { return n.path("containerd.sock") }

// cniNetwork names the node's pod network; host-local keeps its leases in
// /var/lib/cni/networks/<name>, so the name is unique per lab and node.
func (n *node) cniNetwork() string { return filepath.Base(n.cgroupRoot) }

// podRange is the node's pod subnet.
func (n *node) podRange() string { return podRange(n.index) }

// inNamespace runs a program in the node's network namespace and the
// host's mount namespace. (`ip netns exec` would remount /sys, leaving
// /sys/fs/cgroup empty for the kubelet and runc.)
func (n *node) inNamespace(argv ...string) []string {
	return append([]string{"nsenter", "--net=/run/netns/" + n.ns, "--"}, argv...)
}

// writeConfigs writes containerd's, the CNI plugins' and the kubelet's
// configuration.
func (n *node) writeConfigs(pauseImage, caFile string) error {
	for _, d := range []string{"containerd", "runc", "cni", "kubelet", "kubelet-certs", "logs"} {
		if err := os.MkdirAll(n.path(d), 0o755); err != nil {
			return err
		}
	}
	containerd := fmt.Sprintf(`version = 2
root = %[1]q
state = %[2]q
[grpc]
  address = %[3]q
[ttrpc]
  address = %[4]q
[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  # This machine keeps CAP_SYS_RESOURCE out of every bounding set: without
  # this, runc fails to write oom_score_adj for every container.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = %[7]q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = %[8]q
`, n.path("containerd", "root"), n.path("containerd", "state"), n.socket(), n.socket()+".ttrpc",
		n.path("containerd", "opt"), pauseImage, n.path("runc"), n.path("cni"))
	if err := os.WriteFile(n.path("containerd.toml"), []byte(containerd), 0o644); err != nil {
		return err
	}

	// Pods get an address from the node's range on a bridge; their only
	// routes lead into the lab (no default route), and traffic leaving
	// the range is masqueraded to the node's address.
	cni := map[string]any{
		"cniVersion": "0.4.0",
		"name":       n.cniNetwork(),
		"plugins": []any{
			map[string]any{
				"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
				"ipam": map[string]any{
					"type":   "host-local",
					"ranges": [][]map[string]string{{{"subnet": n.podRange()}}},
					"routes": []map[string]string{{"dst": "198.18.0.0/15"}},
				},
			},
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}},
		},
	}
	data, err := json.MarshalIndent(cni, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(n.path("cni", "10-lab.conflist"), data, 0o644); err != nil {
		return err
	}

	// No name server: a pod's lookups must not leave the machine.
	if err := os.WriteFile(n.path("resolv.conf"), nil, 0o644); err != nil {
		return err
	}
	kubelet := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1; kubelets from 1.35 on refuse it unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %[1]s
failSwapOn: false
address: %[2]s
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
podLogsDir: %[3]s
resolvConf: %[4]s
containerRuntimeEndpoint: unix://%[5]s
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[6]s}
authorization: {mode: Webhook}
clusterDomain: cluster.local
# No server answers at this lab address (the lab runs no cluster DNS): it
# is set so pods get the resolv.conf a real cluster gives them, whose
# search path the data plane must not inherit (TestHAProxyConfined).
clusterDNS: [%[7]s]
serializeImagePulls: false
# The lab's disk is shared by every node: evict only when it is truly full.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%%, imagefs.available: 1%%, nodefs.inodesFree: 1%%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
`, n.cgroupRoot, n.addr, n.path("logs"), n.path("resolv.conf"), n.socket(), caFile, ClusterDNS)
	return os.WriteFile(n.path("kubelet.yaml"), []byte(kubelet), 0o644)
}

// kubeProxyConfig is kube-proxy's configuration: iptables mode, as most
// clusters run it. The conntrack settings are left as the lab's kernel
// has them (zero means "do not set"): nf_conntrack_max is not writable
// from a node's network namespace, and the nodes share one kernel.
// NodePorts answer on the node's address only, so kube-proxy need not
// turn on route_localnet.
func (n *node) kubeProxyConfig(kubeconfig string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
hostnameOverride: %[1]s
clusterCIDR: %[2]s
nodePortAddresses: [primary]
bindAddress: %[3]s
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clientConnection:
  kubeconfig: %[4]s
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
`, n.name, PodRanges, n.addr, kubeconfig)
}

// nodeCPUShares weighs a node's cgroup root against the host's other
// processes. A node is a machine of its own: the lab's client (wrk at full
// speed), backends and control plane stand for other machines and must not
// take its CPU the way a neighbour on one kernel would. With the default
// 1024, the node's whole tree weighed as much as one wrk thread, and under
// load keepalived waited for CPU past the master-down interval (false
// failovers no real node would see from a client's load).
const nodeCPUShares = "16384"

// createCgroups makes the node's cgroup root in every hierarchy. A new
// cpuset cgroup starts with no CPUs or memory nodes: copy its parent's.
func (n *node) createCgroups() error {
	hierarchies, err := leftovers.CgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hierarchies {
		dir := filepath.Join(h, n.cgroupRoot)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("creating cgroup %s: %w", dir, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if data, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
					return fmt.Errorf("setting %s of %s: %w", f, dir, err)
				}
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "cpu.shares")); err == nil {
			if err := os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte(nodeCPUShares), 0o644); err != nil {
				return fmt.Errorf("setting cpu.shares of %s: %w", dir, err)
			}
		}
	}
	return nil
}

// startContainerd runs containerd and waits for its socket.
func (n *node) startContainerd(ctx context.Context) error {
	var err error
	if n.containerd, err = startProcess(n.dir, "containerd", n.inNamespace("containerd", "--config", n.path("containerd.toml"))...); err != nil {
		return err
	}
	return n.waitContainerd(ctx, 30*time.Second)
}

// startKubelet runs the kubelet, restarted a second after it exits.
func (n *node) startKubelet(assets, kubeconfig string) error {
	var err error
	n.kubelet, err = supervise(func() (*process, error) {
		return startProcess(n.dir, "kubelet", n.inNamespace(filepath.Join(assets, "kubelet"),
			"--config="+n.path("kubelet.yaml"), "--kubeconfig="+kubeconfig,
			"--root-dir="+n.path("kubelet"), "--cert-dir="+n.path("kubelet-certs"),
			"--hostname-override="+n.name, "--node-ip="+n.addr)...)
	})
	return err
}

// startKubeProxy runs kube-proxy in the node's namespace, restarted a
// second after it exits, as its DaemonSet would be.
func (n *node) startKubeProxy(assets, kubeconfig string) error {
	if err := os.WriteFile(n.path("kube-proxy.yaml"), []byte(n.kubeProxyConfig(kubeconfig)), 0o644); err != nil {
		return err
	}
	var err error
	n.kubeProxy, err = supervise(func() (*process, error) {
		return startProcess(n.dir, "kube-proxy", n.inNamespace(filepath.Join(assets, "kube-proxy"),
			"--config="+n.path("kube-proxy.yaml"))...)
	})
	return err
}

// supervised is a process started again a second after it exits, as
// systemd's Restart=always keeps a node's kubelet running. A kubelet exits
// when it cannot validate the runtime's CRI API, which a just-restarted
// containerd may not serve yet although its socket answers.
type supervised struct {
	mu      sync.Mutex
	current *process
	stopped chan struct{}
}

func supervise(start func() (*process, error)) (*supervised, error) {
	p, err := start()
	if err != nil {
		return nil, err
	}
	s := &supervised{current: p, stopped: make(chan struct{})}
	go func() {
		for {
			select {
			case <-s.stopped:
				return
			case <-p.done:
			}
			select {
			case <-s.stopped:
				return
			case <-time.After(time.Second):
			}
			s.mu.Lock()
			select {
			case <-s.stopped:
				s.mu.Unlock()
				return
			default:
			}
			next, err := start()
			if err != nil {
				s.mu.Unlock()
				return
			}
			s.current, p = next, next
			s.mu.Unlock()
		}
	}()
	return s, nil
}

// stop ends the supervision and the process.
func (s *supervised) stop(grace time.Duration) {
	s.mu.Lock()
	close(s.stopped)
	p := s.current
	s.mu.Unlock()
	p.stop(grace)
}

func (n *node) waitContainerd(ctx context.Context, timeout time.Duration) error {
	if err := Poll(ctx, 100*time.Millisecond, timeout, func() error {
		if n.containerd.exited() {
			return Stop(fmt.Errorf("containerd on %s exited: %s", n.name, tail(n.path("containerd.log"), 2000)))
		}
		if err := exec.CommandContext(ctx, "ctr", "--address", n.socket(), "version").Run(); err != nil {
			return fmt.Errorf("containerd on %s does not answer: %w", n.name, err)
		}
		return nil
	}); err != nil {
		return err
	}
	return nil
}

// importImage loads an image archive into the node's containerd, where
// the kubelet finds it (the CRI's namespace is k8s.io).
func (n *node) importImage(ctx context.Context, archive string) error {
	out, err := exec.CommandContext(ctx, "ctr", "--address", n.socket(), "-n", "k8s.io", "images", "import", archive).CombinedOutput()
	if err != nil {
		return fmt.Errorf("importing %s into %s's containerd: %v: %s", filepath.Base(archive), n.name, err, out)
	}
	return nil
}

// stopKubeProxy stops kube-proxy; its rules stay in the node's namespace.
func (n *node) stopKubeProxy() {
	if n.kubeProxy != nil {
		n.kubeProxy.stop(10 * time.Second)
		n.kubeProxy = nil
	}
}

// stopRuntime stops the kubelet and containerd, leaving the containers
// running (their shims outlive containerd), as when a node's agents crash
// or are restarted.
func (n *node) stopRuntime() {
	if n.kubelet != nil {
		n.kubelet.stop(10 * time.Second)
		n.kubelet = nil
	}
	if n.containerd != nil {
		n.containerd.stop(10 * time.Second)
		n.containerd = nil
	}
}

// iptablesRules is the node's IPv4 tables as iptables-save prints them:
// kube-proxy's rules, among others.
func (n *node) iptablesRules(ctx context.Context) (string, error) {
	argv := n.inNamespace("iptables-save")
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	return string(out), err
}
