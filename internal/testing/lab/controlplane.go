package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// The control plane's addresses. The host's end of the lab bridge carries
// APIServerAddr, so every node reaches the API server as a cluster's nodes
// would; ServiceRange holds the Services' cluster IPs, the first of them
// the `kubernetes` Service.
const (
	APIServerAddr   = Prefix + "1"
	APIServerPort   = 6443
	ServiceRange    = "198.19.200.0/24"
	KubernetesSvcIP = "198.19.200.1"
	// podRangeFormat is each node's pod range, by node index from 1;
	// PodRanges holds them all (kube-proxy's cluster CIDR).
	podRangeFormat = "198.19.%d.0/24"
	PodRanges      = "198.19.0.0/17"
)

// podRange is the pod range of the node of that index.
func podRange(index int) string { return fmt.Sprintf(podRangeFormat, index+1) }

// controlPlane is etcd, kube-apiserver, kube-controller-manager and
// kube-scheduler, each a process of the host, started from the binaries
// hack/control-plane.sh builds.
type controlPlane struct {
	dir    string
	assets string
	pki    *pki
	admin  string // admin kubeconfig
	procs  []*process
}

// process is a long-running program of the lab, logging to a file, in its
// own process group so that stopping it stops whatever it started.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess runs argv with its output in dir/name.log.
func startProcess(dir, name string, argv ...string) (*process, error) {
	log, err := os.OpenFile(filepath.Join(dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); log.Close(); close(p.done) }()
	return p, recordProcesses()
}

// exited tells whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group and SIGKILL after grace.
func (p *process) stop(grace time.Duration) {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// freePort asks the kernel for an unused port on the host's loopback.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func startControlPlane(ctx context.Context, dir, assets string) (*controlPlane, error) {
	cp := &controlPlane{dir: dir, assets: assets}
	var err error
	if cp.pki, err = newPKI(filepath.Join(dir, "pki")); err != nil {
		return cp, err
	}
	server := fmt.Sprintf("https://%s:%d", APIServerAddr, APIServerPort)
	if err := cp.pki.issue("apiserver", "kube-apiserver", nil,
		[]string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost"},
		[]net.IP{net.ParseIP(APIServerAddr), net.ParseIP(KubernetesSvcIP), net.ParseIP("127.0.0.1")}); err != nil {
		return cp, err
	}
	// The API server's identity towards kubelets (logs, exec).
	if err := cp.pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client", []string{"system:masters"}, nil, nil); err != nil {
		return cp, err
	}
	if cp.admin, err = cp.pki.kubeconfig("admin", "hakeeper-lab-admin", []string{"system:masters"}, server); err != nil {
		return cp, err
	}
	kcm, err := cp.pki.kubeconfig("controller-manager", "system:kube-controller-manager", nil, server)
	if err != nil {
		return cp, err
	}
	scheduler, err := cp.pki.kubeconfig("scheduler", "system:kube-scheduler", nil, server)
	if err != nil {
		return cp, err
	}

	etcdClient, err := freePort()
	if err != nil {
		return cp, err
	}
	etcdPeer, err := freePort()
	if err != nil {
		return cp, err
	}
	// A lab kept in HAKEEPER_LAB_DIR starts from an empty cluster, not
	// from what the last run left in etcd.
	if err := os.RemoveAll(filepath.Join(dir, "etcd")); err != nil {
		return cp, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := cp.start("etcd", cp.binary("etcd"),
		"--name=lab", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=lab="+peerURL,
		// The lab's data is thrown away: fsync only slows it down.
		"--unsafe-no-fsync"); err != nil {
		return cp, err
	}
	p := cp.pki.path
	if err := cp.start("kube-apiserver", cp.binary("kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address="+APIServerAddr, "--advertise-address="+APIServerAddr, "--secure-port="+strconv.Itoa(APIServerPort),
		"--cert-dir="+filepath.Join(dir, "apiserver"),
		"--tls-cert-file="+p("apiserver.crt"), "--tls-private-key-file="+p("apiserver.key"),
		"--client-ca-file="+p("ca.crt"),
		"--service-cluster-ip-range="+ServiceRange,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+p("sa.pub"), "--service-account-signing-key-file="+p("sa.key"),
		// As a cluster set up by kubeadm: kubelets are authorized by the
		// Node authorizer and NodeRestriction; PodSecurity admission is on
		// by default.
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--kubelet-client-certificate="+p("apiserver-kubelet-client.crt"), "--kubelet-client-key="+p("apiserver-kubelet-client.key"),
		// Reach kubelets by their node IP: a host name would be resolved
		// through the machine's DNS, which leaves the machine.
		"--kubelet-preferred-address-types=InternalIP",
		"--profiling=false"); err != nil {
		return cp, err
	}
	if err := cp.waitReady(ctx, 90*time.Second); err != nil {
		return cp, err
	}
	if err := cp.start("kube-controller-manager", cp.binary("kube-controller-manager"),
		"--kubeconfig="+kcm, "--authentication-kubeconfig="+kcm, "--authorization-kubeconfig="+kcm,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		// Each controller acts with its own ServiceAccount, as with kubeadm.
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+p("sa.key"),
		// Published to every namespace as kube-root-ca.crt, which pods'
		// projected ServiceAccount volumes carry.
		"--root-ca-file="+p("ca.crt"),
		// Quota usage of a CRD installed after start (count/loadbalancers)
		// is counted once the controller's 30 s discovery has found it and
		// the quota is synced again: every 10 s here rather than 5 min.
		"--resource-quota-sync-period=10s"); err != nil {
		return cp, err
	}
	if err := cp.start("kube-scheduler", cp.binary("kube-scheduler"),
		"--kubeconfig="+scheduler, "--authentication-kubeconfig="+scheduler, "--authorization-kubeconfig="+scheduler,
		"--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0"); err != nil {
		return cp, err
	}
	return cp, nil
}

func (cp *controlPlane) binary(name string) string { return filepath.Join(cp.assets, name) }

func (cp *controlPlane) start(name string, argv ...string) error {
	p, err := startProcess(cp.dir, name, argv...)
	if err != nil {
		return err
	}
	cp.procs = append(cp.procs, p)
	return nil
}

// waitReady waits for the API server's /readyz, reporting an exited
// process with the end of its log.
func (cp *controlPlane) waitReady(ctx context.Context, timeout time.Duration) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", cp.admin)
	if err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := Poll(ctx, 200*time.Millisecond, timeout, func() error {
		for _, p := range cp.procs {
			if p.exited() {
				return Stop(fmt.Errorf("%s exited: %s", p.name, tail(filepath.Join(cp.dir, p.name+".log"), 2000)))
			}
		}
		body, err := cs.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		return fmt.Errorf("%v %s", err, body)
	}); err != nil {
		return fmt.Errorf("the API server was not ready within %v: %w", timeout, err)
	}
	return nil
}

// stop ends the control plane, the last started first.
func (cp *controlPlane) stop() {
	for i := len(cp.procs) - 1; i >= 0; i-- {
		cp.procs[i].stop(20 * time.Second)
	}
	cp.procs = nil
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(st.Size()-n, 0)
	buf := make([]byte, st.Size()-off)
	_, _ = f.ReadAt(buf, off)
	return string(buf)
}
