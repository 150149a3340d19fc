package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/leftovers"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// Config sizes a lab.
type Config struct {
	// Nodes and Backends count the namespaces that play them.
	Nodes, Backends int
	// Dir holds the cluster's files, each node's containerd and kubelet,
	// and every log.
	Dir string
	// NodeLabels go on every lab Node.
	NodeLabels map[string]string
	// Images are the built images (LoadImages(ImagesFile()) by default).
	Images *Images
	// SkipOperator leaves hakeeper uninstalled (InstallOperator installs it).
	SkipOperator bool
	// Helm installs hakeeper with `helm install` of charts/hakeeper rather
	// than `kubectl apply -k` of config/default.
	Helm bool
}

// Lab is a running lab: a real cluster of Config.Nodes nodes with
// hakeeper installed.
type Lab struct {
	// Client and Config act as the cluster's admin.
	Client          client.Client
	Config          *rest.Config
	Clientset       kubernetes.Interface
	AdminKubeconfig string

	cfg    Config
	dir    string
	assets string
	images Images
	net    *network
	cp     *controlPlane
	nodes  []*node
	lock   *os.File

	mu       sync.Mutex
	backends []*exec.Cmd
}

// NodeName, NodeAddr, BackendName and BackendAddr name the lab's hosts.
func NodeName(i int) string    { return fmt.Sprintf("node-%c", 'a'+i) }
func NodeAddr(i int) string    { return Prefix + strconv.Itoa(11+i) }
func BackendName(i int) string { return fmt.Sprintf("backend-%d", i+1) }
func BackendAddr(i int) string { return Prefix + strconv.Itoa(21+i) }

// ClientAddr is the client's address.
const ClientAddr = Prefix + "50"

// ClusterDNS is the cluster DNS address the kubelets give pods; nothing
// answers there.
const ClusterDNS = Prefix + "53"

// IPv6 subnet of the lab network, inside the documentation range
// 2001:db8::/32: every host has an address in it too, the IPv4 one's last
// octet written after Prefix6 (198.18.0.11 is 2001:db8:18::11).
const (
	Prefix6    = "2001:db8:18::"
	PrefixLen6 = 64
)

// IPv6Of is the IPv6 address of the lab host whose IPv4 address is addr.
func IPv6Of(addr string) string {
	return Prefix6 + strings.TrimPrefix(addr, Prefix)
}

// ClientAddr6 is the client's IPv6 address.
var ClientAddr6 = IPv6Of(ClientAddr)

// lockPath serialises labs on a machine: they share the API server's
// address and port on the host.
const lockPath = "/run/hakeeper-lab.lock"

// Start builds the network, the control plane and the nodes (containerd
// and a kubelet each, the images imported), and installs hakeeper with
// kustomize or Helm. Close undoes all of it, also after a failed Start.
func Start(ctx context.Context, cfg Config) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root: it creates network namespaces, cgroups and mounts")
	}
	l = &Lab{cfg: cfg, dir: cfg.Dir}
	l.net = &network{prefix: fmt.Sprintf("hk%d-", os.Getpid())}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if l.lock, err = os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o600); err != nil {
		return l, err
	}
	if err := syscall.Flock(int(l.lock.Fd()), syscall.LOCK_EX); err != nil {
		return l, fmt.Errorf("waiting for another lab to end: %w", err)
	}
	for _, what := range leftovers.Reap(namespaceOwner) {
		fmt.Fprintf(os.Stderr, "lab: removed leftover %s\n", what)
	}
	for _, what := range reapPodNamespaces() {
		fmt.Fprintf(os.Stderr, "lab: removed leftover %s\n", what)
	}
	// A killed lab's folder may have been this one: it is gone now.
	if err := os.MkdirAll(l.dir, 0o755); err != nil {
		return l, err
	}
	if cfg.Images != nil {
		l.images = *cfg.Images
	} else if l.images, err = LoadImages(ImagesFile()); err != nil {
		return l, err
	}
	l.assets = os.Getenv("KUBEBUILDER_ASSETS")
	if l.assets == "" {
		l.assets = filepath.Join(testenv.RepoRoot(), "bin", "k8s")
	}
	for _, b := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "etcd"} {
		if _, err := os.Stat(filepath.Join(l.assets, b)); err != nil {
			return l, fmt.Errorf("no %s in %s: run hack/control-plane.sh (make test does): %w", b, l.assets, err)
		}
	}
	if err := leftovers.RecordDirs(l.dir); err != nil {
		return l, err
	}
	if err := l.startNetwork(); err != nil {
		return l, err
	}
	if l.cp, err = startControlPlane(ctx, filepath.Join(l.dir, "control-plane"), l.assets); err != nil {
		return l, err
	}
	l.AdminKubeconfig = l.cp.admin
	if err := l.connect(); err != nil {
		return l, err
	}
	for i := range cfg.Backends {
		if err := l.startBackend(i); err != nil {
			return l, err
		}
	}
	if err := l.startNodes(ctx); err != nil {
		return l, err
	}
	if cfg.SkipOperator {
		return l, nil
	}
	if cfg.Helm {
		if _, err := l.HelmInstall(ctx, false, l.images.Manager, l.images.DataPlane); err != nil {
			return l, err
		}
	} else if err := l.InstallOperator(ctx); err != nil {
		return l, err
	}
	if err := l.Client.Create(ctx, Class(cfg.NodeLabels)); err != nil {
		return l, err
	}
	if err := l.Client.Create(ctx, TLSDelegation("default")); err != nil {
		return l, err
	}
	return l, l.OptInTLS(ctx, "default")
}

func (l *Lab) connect() error {
	var err error
	if l.Config, err = clientcmd.BuildConfigFromFlags("", l.AdminKubeconfig); err != nil {
		return err
	}
	scheme := apiruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if l.Client, err = client.New(l.Config, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	l.Clientset, err = kubernetes.NewForConfig(l.Config)
	return err
}

func (l *Lab) startNetwork() error {
	if err := l.net.create(); err != nil {
		return err
	}
	// The host's end of the bridge: the control plane listens there.
	if err := l.net.addHostPort(APIServerAddr); err != nil {
		return err
	}
	l.net.services = map[string]bool{}
	for i := range l.cfg.Nodes {
		if err := l.net.addHost(NodeName(i), NodeAddr(i)); err != nil {
			return err
		}
		l.net.services[NodeName(i)] = true
	}
	l.net.podRoutes = map[string][][2]string{}
	for i := range l.cfg.Nodes {
		for j := range l.cfg.Nodes {
			if i != j {
				l.net.podRoutes[NodeName(i)] = append(l.net.podRoutes[NodeName(i)], [2]string{podRange(j), NodeAddr(j)})
			}
		}
		if err := l.net.routePods(NodeName(i)); err != nil {
			return err
		}
	}
	for i := range l.cfg.Backends {
		if err := l.net.addHost(BackendName(i), BackendAddr(i)); err != nil {
			return err
		}
	}
	return l.net.addHost("client", ClientAddr)
}

// startNodes starts every node's containerd and kubelet, side by side,
// and waits for the nodes to register and become Ready.
func (l *Lab) startNodes(ctx context.Context) error {
	for i := range l.cfg.Nodes {
		n := &node{name: NodeName(i), index: i, addr: NodeAddr(i), ns: l.net.ns(NodeName(i)),
			dir: filepath.Join(l.dir, NodeName(i)), cgroupRoot: "/" + l.net.ns(NodeName(i))}
		l.nodes = append(l.nodes, n)
		if err := leftovers.RecordCgroups(n.cgroupRoot); err != nil {
			return err
		}
		if err := leftovers.RecordDirs(filepath.Join("/var/lib/cni/networks", n.cniNetwork())); err != nil {
			return err
		}
	}
	errs := make([]error, len(l.nodes))
	var wg sync.WaitGroup
	for i, n := range l.nodes {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = l.startNode(ctx, n) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := l.waitNodesReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	return l.waitProxied(ctx, time.Minute)
}

func (l *Lab) startNode(ctx context.Context, n *node) error {
	if err := n.createCgroups(); err != nil {
		return err
	}
	if err := n.writeConfigs(l.images.Pause, l.cp.pki.path("ca.crt")); err != nil {
		return err
	}
	kubeconfig, err := l.cp.pki.kubeconfig("kubelet-"+n.name, "system:node:"+n.name, []string{"system:nodes"},
		fmt.Sprintf("https://%s:%d", APIServerAddr, APIServerPort))
	if err != nil {
		return err
	}
	// kube-proxy's identity, bound to system:node-proxier by the API
	// server's bootstrap policy.
	proxyKubeconfig, err := l.cp.pki.kubeconfig("kube-proxy-"+n.name, "system:kube-proxy", nil,
		fmt.Sprintf("https://%s:%d", APIServerAddr, APIServerPort))
	if err != nil {
		return err
	}
	if err := l.net.prepareServices(n.name); err != nil {
		return err
	}
	if err := n.startContainerd(ctx); err != nil {
		return err
	}
	for _, a := range l.images.archives() {
		if err := n.importImage(ctx, a); err != nil {
			return err
		}
	}
	if err := n.startKubelet(l.assets, kubeconfig); err != nil {
		return err
	}
	return n.startKubeProxy(l.assets, proxyKubeconfig)
}

// waitProxied waits until kube-proxy on every node routes the
// `kubernetes` Service, which hakeeper's pods reach the API server by.
func (l *Lab) waitProxied(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range l.nodes {
		if err := Poll(ctx, 250*time.Millisecond, time.Until(deadline), func() error {
			rules, err := n.iptablesRules(ctx)
			if err == nil && strings.Contains(rules, KubernetesSvcIP+"/32") {
				return nil
			}
			return fmt.Errorf("no rule (%v)", err)
		}); err != nil {
			return fmt.Errorf("kube-proxy on %s did not route the kubernetes Service within %v (%v); its log ends: %s",
				n.name, timeout, err, tail(n.path("kube-proxy.log"), 3000))
		}
	}
	return nil
}

// waitNodesReady waits for every node to be Ready, then labels them as an
// admin would.
func (l *Lab) waitNodesReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for _, n := range l.nodes {
		if err := Poll(ctx, 250*time.Millisecond, time.Until(deadline), func() error {
			node := &corev1.Node{}
			if err := l.Client.Get(ctx, client.ObjectKey{Name: n.name}, node); err != nil {
				return err
			}
			if ready(node) {
				return nil
			}
			return fmt.Errorf("conditions %+v", node.Status.Conditions)
		}); err != nil {
			return fmt.Errorf("node %s not Ready within %v: %v; its kubelet's log ends: %s", n.name, timeout, err, tail(n.path("kubelet.log"), 3000))
		}
		if len(l.cfg.NodeLabels) > 0 {
			if err := l.LabelNode(ctx, n.name, l.cfg.NodeLabels); err != nil {
				return err
			}
		}
	}
	return nil
}

func ready(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// LabelNode sets labels on a node.
func (l *Lab) LabelNode(ctx context.Context, name string, labels map[string]string) error {
	node := &corev1.Node{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
		return err
	}
	patch := client.MergeFrom(node.DeepCopy())
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	for k, v := range labels {
		node.Labels[k] = v
	}
	return l.Client.Patch(ctx, node, patch)
}

// startBackend runs this very binary as an HTTP backend in its namespace
// (MaybeRunBackend turns it into one).
func (l *Lab) startBackend(i int) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command("ip", "netns", "exec", l.net.ns(BackendName(i)), self)
	cmd.Env = append(os.Environ(), envBackendName+"="+BackendName(i), envBackendDir+"="+l.dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	l.mu.Lock()
	l.backends = append(l.backends, cmd)
	l.mu.Unlock()
	return recordProcesses()
}

// SetBackendHealthy makes a backend's /healthz pass or fail.
func (l *Lab) SetBackendHealthy(i int, healthy bool) error {
	path := filepath.Join(l.dir, BackendName(i)+".down")
	if healthy {
		return os.Remove(path)
	}
	return os.WriteFile(path, nil, 0o644)
}

// namespaceOwner matches the lab's namespace names; its group is the pid
// of the test process that made them (see network.prefix).
var namespaceOwner = regexp.MustCompile(`^hk([0-9]+)-`)

// recordProcesses notes the lab's processes outside its namespaces (the
// control plane, containerd, kubelets, backends), so that a later run can
// remove them if this one is killed before Close.
func recordProcesses() error {
	if err := leftovers.RecordChildren(); err != nil {
		return fmt.Errorf("recording the lab's processes: %w", err)
	}
	return nil
}

// StopControlPlane takes the control plane away: the scheduler, the
// controller manager, the API server and etcd stop. The nodes' kubelets
// and containers keep running, as on a cluster whose control plane is
// down, and the agents see their watches cut and connections refused.
func (l *Lab) StopControlPlane() error {
	if l.cp == nil {
		return errors.New("no control plane")
	}
	l.cp.stop()
	return nil
}

func (l *Lab) node(name string) (*node, error) {
	for _, n := range l.nodes {
		if n.name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node %s", name)
}

// StopRuntime stops a node's kubelet and containerd; its containers keep
// running, as on a node whose agents crashed.
func (l *Lab) StopRuntime(name string) error {
	n, err := l.node(name)
	if err != nil {
		return err
	}
	n.stopRuntime()
	return nil
}

// StartRuntime starts a node's containerd and kubelet again, if stopped.
func (l *Lab) StartRuntime(ctx context.Context, name string) error {
	n, err := l.node(name)
	if err != nil {
		return err
	}
	if n.containerd == nil {
		if err := n.startContainerd(ctx); err != nil {
			return err
		}
	}
	if n.kubelet != nil {
		return nil
	}
	return n.startKubelet(l.assets, l.cp.pki.path("kubelet-"+n.name+".kubeconfig"))
}

// NodeLog is the end of a node's kubelet or containerd log, for a failure.
func (l *Lab) NodeLog(name, program string, bytes int64) string {
	n, err := l.node(name)
	if err != nil {
		return err.Error()
	}
	return tail(n.path(program+".log"), bytes)
}

// ClientCommand runs a program in the client's namespace, for load
// generators such as wrk.
func (l *Lab) ClientCommand(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.net.ns("client")}, argv...)...)
}

// NodeCommand runs a program in a node's network namespace (and the
// host's mount namespace).
func (l *Lab) NodeCommand(ctx context.Context, name string, argv ...string) (*exec.Cmd, error) {
	n, err := l.node(name)
	if err != nil {
		return nil, err
	}
	args := n.inNamespace(argv...)
	return exec.CommandContext(ctx, args[0], args[1:]...), nil
}

// NodeNetNS is the path of a node's network namespace, which its
// kubelet, containerd, kube-proxy, shims and host-network pods share.
func (l *Lab) NodeNetNS(name string) (string, error) {
	n, err := l.node(name)
	if err != nil {
		return "", err
	}
	return "/run/netns/" + n.ns, nil
}

// IPTablesRules is a node's IPv4 tables as iptables-save prints them,
// where kube-proxy writes its Services' rules.
func (l *Lab) IPTablesRules(ctx context.Context, name string) (string, error) {
	n, err := l.node(name)
	if err != nil {
		return "", err
	}
	return n.iptablesRules(ctx)
}

// SetLink pulls or plugs a node's network cable.
func (l *Lab) SetLink(node string, up bool) error { return l.net.setLink(node, up) }

// Close stops everything the lab started and removes its namespaces,
// cgroups, mounts and folders.
func (l *Lab) Close() {
	for _, n := range l.nodes {
		n.stopKubeProxy()
		n.stopRuntime()
	}
	// What the kubelets ran (containers, their shims) is in the nodes'
	// cgroups and namespaces, removed by name.
	if l.cp != nil {
		l.cp.stop()
	}
	l.mu.Lock()
	for _, b := range l.backends {
		_ = syscall.Kill(-b.Process.Pid, syscall.SIGTERM)
		_ = b.Wait()
	}
	l.backends = nil
	l.mu.Unlock()
	// Containers' shims and host-network containers live in the nodes'
	// namespaces; every container is in its node's cgroup root.
	l.net.destroy()
	for _, n := range l.nodes {
		leftovers.RemoveCgroup(n.cgroupRoot)
		leftovers.RemoveDir(filepath.Join("/var/lib/cni/networks", n.cniNetwork()))
		// The images and snapshots go; the logs stay for a look.
		leftovers.RemoveDir(n.path("containerd"))
		leftovers.RemoveDir(n.path("kubelet"))
	}
	reapPodNamespaces()
	links, _ := filepath.Glob(filepath.Join(os.TempDir(), l.net.prefix+"*"))
	for _, link := range links { // PodVolume's symlinks
		_ = os.Remove(link)
	}
	leftovers.Unmount(l.dir)
	leftovers.Forget()
	if l.lock != nil {
		_ = l.lock.Close()
	}
}

// HoldsVIP tells whether a node's eth0 carries addr, asking the kernel
// rather than the API (which may be gone).
func (l *Lab) HoldsVIP(node, addr string) bool {
	out, err := exec.Command("ip", "-n", l.net.ns(node), "-o", "addr", "show", "dev", "eth0").Output()
	return err == nil && strings.Contains(string(out), " "+addr+"/")
}

// Pods lists the pods of a namespace with the given labels.
func (l *Lab) Pods(ctx context.Context, namespace string, labels map[string]string) ([]corev1.Pod, error) {
	var pods corev1.PodList
	err := l.Client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels(labels))
	return pods.Items, err
}

// Dir is the lab's folder (logs of every process, each node's files).
func (l *Lab) Dir() string { return l.dir }
