package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/leftovers"
	"github.com/hakeeper/hakeeper/internal/testenv"
)

// Config sizes a lab.
type Config struct {
	// Nodes and Backends count the namespaces that play them.
	Nodes, Backends int
	// Binary is the hakeeper binary under test (manager and agent).
	Binary string
	// Dir holds per-node folders, logs and kubeconfigs.
	Dir string
	// NodeLabels go on every lab Node.
	NodeLabels map[string]string
}

// Lab is a running lab.
type Lab struct {
	Env    *testenv.Env
	Client client.Client

	cfg       Config
	binary    string
	dir       string
	net       *network
	apiPort   string
	adminKube string
	clientset kubernetes.Interface

	procs    []*exec.Cmd // backends and the manager
	manager  *exec.Cmd
	proxies  []*apiProxy
	kubelets map[string]*kubelet
	stop     context.CancelFunc
	wg       sync.WaitGroup
}

// NodeName, NodeAddr, BackendName and BackendAddr name the lab's hosts.
func NodeName(i int) string    { return fmt.Sprintf("node-%c", 'a'+i) }
func NodeAddr(i int) string    { return Prefix + strconv.Itoa(11+i) }
func BackendName(i int) string { return fmt.Sprintf("backend-%d", i+1) }
func BackendAddr(i int) string { return Prefix + strconv.Itoa(21+i) }

// ClientAddr is the client's address.
const ClientAddr = Prefix + "50"

// Start builds the network, the control plane, the manager and the lab
// kubelets. Close undoes all of it, also after a failed Start.
func Start(ctx context.Context, cfg Config) (l *Lab, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the lab needs root: it creates network namespaces")
	}
	for _, what := range leftovers.Reap(namespaceOwner) {
		fmt.Fprintf(os.Stderr, "lab: removed leftover %s\n", what)
	}
	l = &Lab{cfg: cfg, binary: cfg.Binary, dir: cfg.Dir, kubelets: map[string]*kubelet{}}
	l.net = &network{prefix: fmt.Sprintf("hk%d-", os.Getpid())}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	if err := l.startNetwork(); err != nil {
		return l, err
	}
	if l.Env, err = testenv.Start(); err != nil {
		return l, err
	}
	l.Client = l.Env.Client
	if l.clientset, err = kubernetes.NewForConfig(l.Env.Config); err != nil {
		return l, err
	}
	u, err := url.Parse(l.Env.Config.Host)
	if err != nil {
		return l, err
	}
	l.apiPort = u.Port()
	l.adminKube = filepath.Join(l.dir, "admin.kubeconfig")
	if err := l.Env.WriteKubeconfig(l.adminKube); err != nil {
		return l, err
	}
	for i := range cfg.Backends {
		if err := l.startBackend(i); err != nil {
			return l, err
		}
	}
	if err := l.StartManager(); err != nil {
		return l, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	l.stop = cancel
	for i := range cfg.Nodes {
		if err := l.addNode(ctx, i); err != nil {
			return l, err
		}
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.runKubelets(runCtx) }()
	return l, nil
}

func (l *Lab) startNetwork() error {
	if err := l.net.create(); err != nil {
		return err
	}
	for i := range l.cfg.Nodes {
		if err := l.net.addHost(NodeName(i), NodeAddr(i)); err != nil {
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
	l.procs = append(l.procs, cmd)
	return nil
}

// SetBackendHealthy makes a backend's /healthz pass or fail.
func (l *Lab) SetBackendHealthy(i int, healthy bool) error {
	path := filepath.Join(l.dir, BackendName(i)+".down")
	if healthy {
		return os.Remove(path)
	}
	return os.WriteFile(path, nil, 0o644)
}

// StartManager runs `hakeeper manager` as its own process.
func (l *Lab) StartManager() error {
	log, err := os.OpenFile(filepath.Join(l.dir, "manager.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(l.binary, "manager", "--kubeconfig="+l.adminKube, "--metrics-bind-address=0",
		"--health-probe-bind-address=0", "--dataplane-image=hakeeper/dataplane:lab")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	l.manager = cmd
	return l.recordProcesses()
}

// namespaceOwner matches the lab's namespace names; its group is the pid
// of the test process that made them (see network.prefix).
var namespaceOwner = regexp.MustCompile(`^hk([0-9]+)-`)

// recordProcesses notes the lab's processes outside its namespaces (the
// control plane and the manager), so that a later run can remove them if
// this one is killed before Close.
func (l *Lab) recordProcesses() error {
	if err := leftovers.RecordChildren(); err != nil {
		return fmt.Errorf("recording the lab's processes: %w", err)
	}
	return nil
}

// StopManager stops the operator.
func (l *Lab) StopManager() {
	if l.manager != nil {
		terminate(l.manager)
		l.manager = nil
	}
}

// StopControlPlane takes the control plane away: the manager stops, the
// nodes' API endpoints close with every connection through them (agents
// see their watches cut and connections refused, as when the API server
// is down), and the API server and etcd are stopped. A slow graceful
// shutdown of the API server is reported but not an error: it is
// unreachable by then anyway.
func (l *Lab) StopControlPlane() error {
	l.StopManager()
	for _, p := range l.proxies {
		p.close()
	}
	l.proxies = nil
	env := l.Env
	l.Env = nil
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "lab: stopping the API server: %v\n", err)
	}
	return nil
}

func terminate(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// addNode creates the Node object, an API server endpoint inside the node's
// namespace (a proxy to the real one, whose certificate names 127.0.0.1),
// and the node's kubelet.
func (l *Lab) addNode(ctx context.Context, i int) error {
	name, addr := NodeName(i), NodeAddr(i)
	ln, err := listen(l.net.ns(name), "127.0.0.1:"+l.apiPort)
	if err != nil {
		return err
	}
	p := &apiProxy{ln: ln, conns: map[net.Conn]bool{}}
	l.proxies = append(l.proxies, p)
	go p.serve("127.0.0.1:" + l.apiPort)
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l.cfg.NodeLabels}}
	if err := l.Client.Create(ctx, node); err != nil {
		return err
	}
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}, {Type: corev1.NodeHostName, Address: name}}
	node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}
	if err := l.Client.Status().Update(ctx, node); err != nil {
		return err
	}
	dir := filepath.Join(l.dir, name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	l.kubelets[name] = &kubelet{lab: l, node: name, addr: addr, ns: l.net.ns(name), dir: dir, pods: map[string]*pod{}}
	return nil
}

// apiProxy is a node's endpoint for the API server.
type apiProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns map[net.Conn]bool
}

func (p *apiProxy) serve(target string) {
	for {
		conn, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.forward(conn, target)
	}
}

func (p *apiProxy) forward(conn net.Conn, target string) {
	up, err := net.Dial("tcp", target)
	if err != nil {
		_ = conn.Close()
		return
	}
	if !p.track(conn, up) {
		return
	}
	defer p.untrack(conn, up)
	go func() { _, _ = io.Copy(up, conn); _ = up.(*net.TCPConn).CloseWrite() }()
	_, _ = io.Copy(conn, up)
}

// track registers both ends of a connection; false when the proxy is
// already closed (and the connection is).
func (p *apiProxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		for _, c := range conns {
			_ = c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *apiProxy) untrack(conns ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// close stops accepting and cuts every open connection, agents' watches
// included, as an API server that went away would: the API server then
// has no long-running request to wait for when it stops.
func (p *apiProxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// runKubelets syncs every node with the DaemonSets, as kubelets watching
// their pods would, until the lab stops or the API server goes away.
func (l *Lab) runKubelets(ctx context.Context) {
	for {
		if env := l.Env; env != nil {
			l.syncKubelets(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (l *Lab) syncKubelets(ctx context.Context) {
	var sets appsv1.DaemonSetList
	if err := l.Client.List(ctx, &sets); err != nil {
		return
	}
	sets.Items = l.collectGarbage(ctx, sets.Items)
	for name, k := range l.kubelets {
		node := &corev1.Node{}
		if err := l.Client.Get(ctx, client.ObjectKey{Name: name}, node); err != nil {
			continue
		}
		if err := k.sync(ctx, sets.Items, node); err != nil {
			fmt.Fprintf(os.Stderr, "lab kubelet %s: %v\n", name, err)
		}
	}
}

// collectGarbage plays the garbage collector envtest lacks: a DaemonSet
// whose LoadBalancer is gone is deleted, so its pods stop.
func (l *Lab) collectGarbage(ctx context.Context, sets []appsv1.DaemonSet) []appsv1.DaemonSet {
	var live []appsv1.DaemonSet
	for _, ds := range sets {
		owner := metav1.GetControllerOf(&ds)
		if owner != nil && owner.Kind == "LoadBalancer" {
			lb := &metav1.PartialObjectMetadata{}
			lb.SetGroupVersionKind(schema.FromAPIVersionAndKind(owner.APIVersion, owner.Kind))
			err := l.Client.Get(ctx, client.ObjectKey{Namespace: ds.Namespace, Name: owner.Name}, lb)
			if apierrors.IsNotFound(err) || (err == nil && lb.UID != owner.UID) {
				_ = l.Client.Delete(ctx, &ds)
				continue
			}
		}
		live = append(live, ds)
	}
	return live
}

// agentKubeconfig gives a pod's containers the identity of their
// ServiceAccount (a token from the TokenRequest API), reaching the API
// server through the node namespace's proxy.
func (l *Lab) agentKubeconfig(ctx context.Context, namespace, serviceAccount, dir string) (string, error) {
	tr, err := l.clientset.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, serviceAccount,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To(int64(24 * 3600))}}, metav1.CreateOptions{})
	if err != nil {
		return "", fmt.Errorf("failed to get a token for %s/%s: %w", namespace, serviceAccount, err)
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["lab"] = &clientcmdapi.Cluster{Server: l.Env.Config.Host, CertificateAuthorityData: l.Env.Config.CAData}
	cfg.AuthInfos["agent"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	cfg.Contexts["lab"] = &clientcmdapi.Context{Cluster: "lab", AuthInfo: "agent", Namespace: namespace}
	cfg.CurrentContext = "lab"
	path := filepath.Join(dir, "kubeconfig")
	return path, clientcmd.WriteToFile(*cfg, path)
}

// Kill kills a container of a LoadBalancer's pod on a node (SIGKILL to its
// process group); the lab kubelet restarts it after down (at least a
// second, as a kubelet's back-off would). A few seconds down give status
// time to show the failover before a preempting node takes the VIP back.
func (l *Lab) Kill(node string, lb *v1alpha1.LoadBalancer, container string, down time.Duration) error {
	k, ok := l.kubelets[node]
	if !ok {
		return fmt.Errorf("no node %s", node)
	}
	return k.kill(lb.Namespace+"/"+desired.NamesFor(lb).DaemonSet, container, down)
}

// ClientCommand runs a program in the client's namespace, for load
// generators such as wrk.
func (l *Lab) ClientCommand(ctx context.Context, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.net.ns("client")}, argv...)...)
}

// SetLink pulls or plugs a node's network cable.
func (l *Lab) SetLink(node string, up bool) error { return l.net.setLink(node, up) }

// Close stops everything the lab started and removes its namespaces.
func (l *Lab) Close() {
	if l.stop != nil {
		l.stop()
		l.wg.Wait()
	}
	for _, k := range l.kubelets {
		k.mu.Lock()
		pods := k.pods
		k.pods = map[string]*pod{}
		k.mu.Unlock()
		for _, p := range pods {
			k.stopPod(p)
		}
	}
	l.StopManager()
	for _, p := range l.procs {
		terminate(p)
	}
	for _, p := range l.proxies {
		p.close()
	}
	if l.Env != nil {
		_ = l.Env.Stop()
	}
	l.net.destroy()
	leftovers.Forget()
}

// PodDir is where a node keeps a pod's volumes: PodDir/run holds HAProxy's
// sockets, reachable from the test process.
func (l *Lab) PodDir(node, namespace, daemonSet string) string {
	return filepath.Join(l.dir, node, namespace, daemonSet)
}

// HoldsVIP tells whether a node's eth0 carries addr, asking the kernel
// rather than the API (which may be gone).
func (l *Lab) HoldsVIP(node, addr string) bool {
	out, err := exec.Command("ip", "-n", l.net.ns(node), "-o", "addr", "show", "dev", "eth0").Output()
	return err == nil && strings.Contains(string(out), " "+addr+"/")
}
