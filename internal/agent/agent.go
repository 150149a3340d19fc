// Package agent is the data plane's sidecar. On its node it turns the
// LoadBalancer's ConfigMaps into running configs: it checks every new config
// with the real haproxy and keepalived before applying it, applies server
// changes through HAProxy's runtime API, reloads HAProxy through its master
// socket only when the config's structure changed, signals keepalived,
// writes the file keepalived tracks from HAProxy's health, and reports what
// the node runs.
package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/configcheck"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/ifaddr"
)

// Options configure the agent. The DaemonSet sets them from the downward
// API (environment) and flags.
type Options struct {
	Node string
	// Pod is the agent's pod, named in its reports (optional).
	Pod string
	// Namespace is the pod's: the data-plane namespace, where the
	// ConfigMaps are.
	Namespace    string
	LoadBalancer string
	// LoadBalancerNamespace is the LoadBalancer's, where its TLS Secrets
	// are.
	LoadBalancerNamespace string
	HostIP                string
	Paths                 contract.Paths
	Checker               configcheck.Checker
	// HealthInterval is how often HAProxy's health is read while anything
	// is in flux (see healthLoop).
	HealthInterval time.Duration
	// IdleHealthInterval is how often it is read while all is steady. It
	// bounds how long a HAProxy that hangs goes unnoticed; one that dies
	// is seen at once.
	IdleHealthInterval time.Duration
	// ResyncInterval re-reads TLS Secrets and re-checks everything.
	ResyncInterval time.Duration
	// MetricsPort serves metrics on HostIP (0: no metrics).
	MetricsPort int
	// HealthPort answers the kubelet's probes on the loopback (0: none;
	// the exec probes read the heartbeat file).
	HealthPort int
	// OpenFileLimit is how many files HAProxy may open; 0 reads the
	// process's hard RLIMIT_NOFILE (tests set it).
	OpenFileLimit uint64
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	for name, v := range map[string]string{
		contract.EnvNodeName: o.Node, contract.EnvPodNamespace: o.Namespace,
		contract.EnvLoadBalancer: o.LoadBalancer, contract.EnvHostIP: o.HostIP,
		contract.EnvLoadBalancerNamespace: o.LoadBalancerNamespace,
	} {
		if v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", name))
		}
	}
	if net.ParseIP(o.HostIP) == nil && o.HostIP != "" {
		errs = append(errs, fmt.Errorf("%s %q is not an IP address", contract.EnvHostIP, o.HostIP))
	}
	if o.HealthPort < 0 || o.HealthPort > 65535 {
		errs = append(errs, fmt.Errorf("health port %d is not a port", o.HealthPort))
	}
	if o.MetricsPort < 0 || o.MetricsPort > 65535 {
		errs = append(errs, fmt.Errorf("metrics port %d is not a port", o.MetricsPort))
	}
	if o.HealthInterval <= 0 || o.ResyncInterval <= 0 {
		errs = append(errs, errors.New("intervals must be positive"))
	}
	// The liveness probe wants a beat within aliveMaxAge.
	if o.IdleHealthInterval < o.HealthInterval || o.IdleHealthInterval > aliveMaxAge/2 {
		errs = append(errs, fmt.Errorf("the idle health interval %s must be between the health interval %s and %s", o.IdleHealthInterval, o.HealthInterval, aliveMaxAge/2))
	}
	return errors.Join(errs...)
}

// Agent is one node's agent for one LoadBalancer.
type Agent struct {
	o Options
	// beat is when the health loop last ran (UnixNano), for the kubelet's
	// liveness probe.
	beat    atomic.Int64
	cfg     *rest.Config
	names   desired.Names
	client  kubernetes.Interface
	metrics *agentMetrics
	haproxy cache.Store
	keep    cache.Store
	trigger chan struct{}

	// reloadedAt is when the agent last reloaded HAProxy (Unix nanoseconds).
	reloadedAt atomic.Int64
	// preemptDelay is the LoadBalancer's preempt delay (nanoseconds).
	preemptDelay atomic.Int64
	// maintenance: the operator lists this node as cordoned or under
	// maintenance, so it hands the VIPs over.
	maintenance atomic.Bool
	// virtualIPs are the addresses keepalived moves, from vrrp.json.
	virtualIPs atomic.Pointer[[]string]
	// masterGone: HAProxy's master CLI refused a connection, or its socket
	// is gone (see masterWatchLoop); healthNow wakes the health loop.
	masterGone atomic.Bool
	// masterHeldAt is when masterWatchLoop began the last connection to
	// HAProxy's master CLI that got a prompt (Unix nanoseconds): a master
	// reached by an attempt begun after hakeeper-supervise haproxy saw the last
	// one exit is a new one.
	masterHeldAt atomic.Int64
	healthNow    chan struct{}
	// iface holds the node's address, and the virtual IPs when it is master.
	iface string

	// secretWatches stop the watches of TLS Secrets by name; only the sync
	// loop touches them.
	secretWatches map[string]context.CancelFunc

	// roleLearned: the role was read from the node once (initialRole);
	// learnedRole hands it to the role loop, the role's one writer.
	roleLearned bool
	learnedRole chan v1alpha1.VRRPRole
	// refused is the config HAProxy last refused at reload; only the sync
	// loop touches it.
	refused refusedConfig

	mu       sync.Mutex
	state    contract.NodeReport
	applied  appliedConfig
	reported string
	changed  chan struct{}
}

// appliedConfig is what runs now.
type appliedConfig struct {
	haproxyCfg     string
	keepalivedConf string
	// vrrpPeers is the peers file keepalived's supervisor writes the VRRP
	// filter from; it changes with keepalived.conf's side of the config.
	vrrpPeers string
	// servers describe haproxy.cfg's servers as data: what the runtime API
	// can change without a reload.
	servers contract.ServerSet
	certs   map[string]string // listener -> PEM; not kept across restarts
	// certsHash identifies certs, and is what is compared.
	certsHash string
	// unknown: HAProxy and keepalived run a config the agent has no record
	// of (it restarted without one); the next apply reloads them.
	unknown bool
}

// refusedConfig is a haproxy.cfg (with its certificates) that passed the
// checks but that HAProxy's master refused to start.
type refusedConfig struct {
	haproxyCfg, certsHash, message string
}

// New builds an agent.
func New(cfg *rest.Config, o Options) (*Agent, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	c, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Agent{
		o:             o,
		cfg:           cfg,
		metrics:       newAgentMetrics(registry, o),
		names:         desired.NamesFor(&v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Namespace: o.LoadBalancerNamespace, Name: o.LoadBalancer}}),
		client:        c,
		trigger:       make(chan struct{}, 1),
		changed:       make(chan struct{}, 1),
		healthNow:     make(chan struct{}, 1),
		learnedRole:   make(chan v1alpha1.VRRPRole, 1),
		secretWatches: map[string]context.CancelFunc{},
	}, nil
}

// Run runs until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx).WithValues("node", a.o.Node, "LoadBalancer", a.o.LoadBalancerNamespace+"/"+a.o.LoadBalancer)
	ctx = ctrl.LoggerInto(ctx, log)
	if err := a.prepareFiles(); err != nil {
		return err
	}
	var health net.Listener
	if a.o.HealthPort != 0 {
		var err error
		if health, err = a.listenHealth(); err != nil {
			return err
		}
		defer health.Close()
	}
	iface, err := ifaddr.InterfaceHolding(a.o.HostIP)
	if err != nil {
		return err
	}
	a.iface = iface
	linkLocal := ifaddr.LinkLocal(iface)
	a.update(func(r *contract.NodeReport) {
		r.Interface, r.LinkLocal, r.Role = iface, linkLocal, v1alpha1.VRRPRoleUnknown
		r.Addresses = ifaddr.Own(iface)
	})
	a.resume(ctx)
	a.haproxy = a.watchConfigMap(ctx, a.names.HAProxyConfigMap)
	a.keep = a.watchConfigMap(ctx, a.names.KeepalivedConfigMap)
	log.Info("Agent started", "interface", iface)
	// Each loop owns its piece of state. One that fails ends them all and
	// the process, so the kubelet restarts the container: a blind agent
	// must not keep reporting.
	g, ctx := errgroup.WithContext(ctx)
	if health != nil {
		g.Go(func() error {
			if err := a.serveHealth(ctx, health); err != nil {
				return fmt.Errorf("serving the kubelet's probes: %w", err)
			}
			return nil
		})
	}
	if a.o.MetricsPort != 0 {
		g.Go(func() error {
			// Metrics are not worth stopping the data plane for.
			if err := a.serveMetrics(ctx, a.cfg); err != nil {
				log.Error(err, "Serving metrics failed")
			}
			return nil
		})
	}
	for _, loop := range []func(context.Context){a.syncLoop, a.healthLoop, a.masterWatchLoop, a.reportLoop} {
		g.Go(func() error { loop(ctx); return nil })
	}
	g.Go(func() error { return a.roleLoop(ctx) })
	return g.Wait()
}

// prepareFiles creates the directories, the notify FIFO keepalived writes
// to, and the tracked files.
func (a *Agent) prepareFiles() error {
	p := a.o.Paths
	for _, dir := range []string{p.HAProxyConfigDir(), p.KeepalivedConfigDir(), p.HAProxyRun(), p.KeepalivedRun(), p.Health(), p.Agent(),
		filepath.Dir(p.CertificateFile("x")), filepath.Dir(p.CandidateCertificateFile("x"))} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if err := makeFIFO(p.NotifyFIFO()); err != nil {
		return err
	}
	// The tracked files start set in a new pod: not healthy yet, no server
	// known up, and held. A restarted agent finds them as it left them, and
	// keeps them so until it has read HAProxy's health: setting them would
	// take the VIPs off a healthy node.
	for _, f := range []string{p.TrackFile(), p.NoServers(), p.PreemptHold()} {
		if _, err := os.Stat(f); err == nil {
			continue
		}
		if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
			return err
		}
	}
	// Not under maintenance until the operator says so: the first sync,
	// before HAProxy even starts, writes the real value.
	if _, err := os.Stat(p.Maintenance()); err != nil {
		if err := os.WriteFile(p.Maintenance(), []byte("0\n"), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// watchConfigMap watches one ConfigMap by name.
func (a *Agent) watchConfigMap(ctx context.Context, name string) cache.Store {
	return a.watchNamed(ctx, a.o.Namespace, "configmaps", name, &corev1.ConfigMap{})
}

// watchNamed watches one object by name, kicking a sync on every change:
// the agent's Role allows nothing wider (its rules name their objects).
func (a *Agent) watchNamed(ctx context.Context, namespace, resource, name string, objType runtime.Object) cache.Store {
	lw := cache.NewFilteredListWatchFromClient(a.client.CoreV1().RESTClient(), resource, namespace,
		func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", name).String()
		})
	store, controller := cache.NewInformerWithOptions(cache.InformerOptions{
		ListerWatcher: lw,
		ObjectType:    objType,
		Handler: cache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { a.kick() },
			UpdateFunc: func(any, any) { a.kick() },
			DeleteFunc: func(any) { a.kick() },
		},
	})
	go controller.RunWithContext(ctx)
	return store
}

func (a *Agent) kick() {
	select {
	case a.trigger <- struct{}{}:
	default:
	}
}

// update changes the report and wakes the reporter when it changed.
func (a *Agent) update(f func(*contract.NodeReport)) {
	a.mu.Lock()
	f(&a.state)
	a.mu.Unlock()
	select {
	case a.changed <- struct{}{}:
	default:
	}
}

func (a *Agent) snapshot() contract.NodeReport {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.state
	r.Pod = a.o.Pod
	r.Backends = make(map[string]contract.BackendCount, len(a.state.Backends))
	for k, v := range a.state.Backends {
		r.Backends[k] = v
	}
	return r
}

func (a *Agent) lastReload() time.Time { return time.Unix(0, a.reloadedAt.Load()) }
