// Command scale measures the operator at scale on the local control plane:
// N LoadBalancers, each with a Service of M ready endpoints, reconciled by
// the real `hakeeper manager` binary running as its own process. The
// cluster grows with them, as a real one would: every group of 50
// LoadBalancers has its namespace and its three nodes (router IDs are per
// node, 255 at most). For each N, on a fresh API server, it prints the
// time until every LoadBalancer's ConfigMaps hold all endpoints and its
// status is current, the time for an endpoint change in every Service to
// reach every ConfigMap, each also per LoadBalancer, and the manager's
// memory (VmRSS, VmHWM). The per-LoadBalancer figures must stay flat as N
// grows: a reconcile's cost must not grow with the number of
// LoadBalancers.
//
//	go run ./hack/bench/scale -lbs 100,250,1000 -endpoints 50
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

func main() {
	sizes := flag.String("lbs", "100", "LoadBalancers to create, a comma-separated list: each size runs on a fresh API server")
	endpoints := flag.Int("endpoints", 50, "ready endpoints per LoadBalancer's Service")
	perGroup := flag.Int("per-group", 50, "LoadBalancers sharing a namespace and a group of nodes")
	nodes := flag.Int("nodes", 3, "nodes in each group, running each of its LoadBalancers")
	binary := flag.String("hakeeper", "bin/hakeeper", "the hakeeper binary to run as the manager")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up on a size after this long")
	flag.Parse()
	var results []result
	for _, f := range strings.Split(*sizes, ",") {
		lbs, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || lbs < 1 {
			fmt.Fprintf(os.Stderr, "scale: -lbs: %q is not a count\n", f)
			os.Exit(2)
		}
		res, err := run(setup{lbs: lbs, endpoints: *endpoints, perGroup: *perGroup, nodes: *nodes}, *binary, *timeout)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scale:", err)
			os.Exit(1)
		}
		results = append(results, res)
	}
	fmt.Printf("\nper LoadBalancer (%d endpoints each, %d per namespace and group of %d nodes):\n", *endpoints, *perGroup, *nodes)
	fmt.Printf("%6s %12s %14s %16s %18s %14s\n", "LBs", "converge s", "per LB ms", "endpoint s", "per LB ms", "manager MiB")
	for _, r := range results {
		fmt.Printf("%6d %12.2f %14.1f %16.2f %18.1f %14.0f\n", r.lbs, r.converge.Seconds(), perLB(r.converge, r.lbs),
			r.change.Seconds(), perLB(r.change, r.lbs), float64(r.hwmKiB)/1024)
	}
}

func perLB(d time.Duration, lbs int) float64 { return float64(d.Milliseconds()) / float64(lbs) }

type setup struct {
	lbs, endpoints, perGroup, nodes int
}

// group is the namespace and node group of LoadBalancer i.
func (s setup) group(i int) int { return i / s.perGroup }
func (s setup) groups() int     { return (s.lbs + s.perGroup - 1) / s.perGroup }
func namespace(group int) string {
	return fmt.Sprintf("bench-%d", group)
}

type result struct {
	lbs              int
	converge, change time.Duration
	hwmKiB           int
}

// waiting names a LoadBalancer not converged at the last count.
var waiting string

// dataPlaneNamespace holds the data planes, as in config/default.
const dataPlaneNamespace = "hakeeper-system"

// Addresses, all in 198.18.0.0/15: the virtual IPs' pool, the nodes', and
// the endpoints' (a block of endpoints+1 per LoadBalancer, the last one
// for the replacement).
const (
	vipPool   = "198.18.128.0/22"
	maxLBs    = 1000
	nodeBlock = "198.18.200."
)

func run(s setup, binary string, timeout time.Duration) (result, error) {
	res := result{lbs: s.lbs}
	if s.lbs > maxLBs || s.lbs*(s.endpoints+1) > 65534 || s.groups()*s.nodes > 250 || s.perGroup > 255 {
		return res, fmt.Errorf("at most %d LoadBalancers, 65534 endpoints, 250 nodes and 255 LoadBalancers a group: addresses come from 198.18.0.0/15", maxLBs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	env, err := testenv.Start()
	if err != nil {
		return res, err
	}
	defer func() { _ = env.Stop() }()
	c := env.Client
	// The bench watches what it waits for instead of listing it again and
	// again: listing every LoadBalancer and ConfigMap five times a second
	// would cost the API server, on the same cores as the manager, more
	// the more there are.
	watched, err := cache.New(env.Config, cache.Options{Scheme: c.Scheme(), ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{dataPlaneNamespace: {}}},
	}})
	if err != nil {
		return res, err
	}
	go func() { _ = watched.Start(ctx) }()
	for _, obj := range []client.Object{&v1alpha1.LoadBalancer{}, &corev1.ConfigMap{}} {
		if _, err := watched.GetInformer(ctx, obj); err != nil {
			return res, err
		}
	}
	dir, err := os.MkdirTemp("", "hakeeper-scale")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		return res, err
	}
	mgr := exec.CommandContext(ctx, binary, "manager", "--kubeconfig="+kubeconfig, "--metrics-bind-address=0",
		"--health-probe-bind-address=0", "--dataplane-image=hakeeper/dataplane:bench", "--zap-log-level=error",
		"--dataplane-namespace="+dataPlaneNamespace)
	mgr.Stderr = os.Stderr
	if err := mgr.Start(); err != nil {
		return res, fmt.Errorf("failed to start %s: %w", binary, err)
	}
	defer func() { _ = mgr.Process.Signal(syscall.SIGTERM); _ = mgr.Wait() }()

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dataPlaneNamespace}}); err != nil {
		return res, err
	}
	for g := range s.groups() {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace(g)}}); err != nil {
			return res, err
		}
		for i := range s.nodes {
			if err := createNode(ctx, c, g, g*s.nodes+i); err != nil {
				return res, err
			}
		}
	}
	// Every LoadBalancer takes its virtual IP from the class's pool.
	if err := c.Create(ctx, &v1alpha1.LoadBalancerClass{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Annotations: map[string]string{v1alpha1.AnnotationDefaultClass: "true"}},
		Spec: v1alpha1.LoadBalancerClassSpec{
			VirtualIPPools: []v1alpha1.VirtualIPPool{{Name: "bench", CIDR: vipPool}},
			DataPlane:      v1alpha1.DataPlaneSpec{NodeSelector: map[string]string{"pool": "bench"}, Interface: "eth0"},
			// A namespace holds a group of LoadBalancers.
			Limits: v1alpha1.ClassLimits{MaxLoadBalancersPerNamespace: ptr.To[int32](255), MaxVirtualIPsPerNamespace: ptr.To[int32](255)},
		},
	}); err != nil {
		return res, err
	}
	for i := range s.lbs {
		if err := createService(ctx, c, s, i); err != nil {
			return res, err
		}
	}
	fmt.Printf("hakeeper scale: %d LoadBalancers x %d endpoints in %d namespaces, %d nodes; manager pid %d\n",
		s.lbs, s.endpoints, s.groups(), s.groups()*s.nodes, mgr.Process.Pid)
	start := time.Now()
	for i := range s.lbs {
		if err := c.Create(ctx, loadBalancer(s, i)); err != nil {
			return res, err
		}
	}
	created := time.Since(start)
	if err := waitAll(ctx, watched, s, func(_ int, cfg string) bool {
		return strings.Count(cfg, "server ep_")-strings.Count(cfg, " disabled") == s.endpoints
	}); err != nil {
		return res, err
	}
	res.converge = time.Since(start)
	fmt.Printf("created in %.2fs; converged (every ConfigMap holds %d endpoints, status current) after %.2fs\n", created.Seconds(), s.endpoints, res.converge.Seconds())
	printMemory(mgr.Process.Pid, "after converging")
	if err := checkAllocations(ctx, c, s); err != nil {
		return res, err
	}

	// One endpoint replaced in every Service: the time until every
	// haproxy.cfg carries it.
	start = time.Now()
	for i := range s.lbs {
		if err := replaceEndpoint(ctx, c, s, i); err != nil {
			return res, err
		}
	}
	if err := waitAll(ctx, watched, s, func(i int, cfg string) bool { return strings.Contains(cfg, endpointAddr(s, i, s.endpoints)+":8080 ") }); err != nil {
		return res, err
	}
	res.change = time.Since(start)
	fmt.Printf("endpoint change in all %d Services reached every ConfigMap after %.2fs\n", s.lbs, res.change.Seconds())
	res.hwmKiB = printMemory(mgr.Process.Pid, "after the endpoint change")
	return res, nil
}

func createNode(ctx context.Context, c client.Client, group, i int) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i),
		Labels: map[string]string{"pool": "bench", "group": strconv.Itoa(group)}}}
	if err := c.Create(ctx, n); err != nil {
		return err
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeBlock + strconv.Itoa(i+1)}}
	return c.Status().Update(ctx, n)
}

// endpointAddr is endpoint ep of LoadBalancer lb in 198.19.0.0/16; ep =
// endpoints is the replacement.
func endpointAddr(s setup, lb, ep int) string {
	n := lb*(s.endpoints+1) + ep + 1
	return fmt.Sprintf("198.19.%d.%d", n/256, n%256)
}

func createService(ctx context.Context, c client.Client, s setup, i int) error {
	name, ns := fmt.Sprintf("svc-%d", i), namespace(s.group(i))
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		// Headless: the local API server's service range has room for a
		// few hundred cluster IPs, and hakeeper reads only the ports.
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if err := c.Create(ctx, svc); err != nil {
		return err
	}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
	}
	for e := range s.endpoints {
		slice.Endpoints = append(slice.Endpoints, discoveryv1.Endpoint{Addresses: []string{endpointAddr(s, i, e)}})
	}
	return c.Create(ctx, slice)
}

func replaceEndpoint(ctx context.Context, c client.Client, s setup, i int) error {
	slice := &discoveryv1.EndpointSlice{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace(s.group(i)), Name: fmt.Sprintf("svc-%d", i)}, slice); err != nil {
		return err
	}
	slice.Endpoints[0].Addresses = []string{endpointAddr(s, i, s.endpoints)}
	return c.Update(ctx, slice)
}

func loadBalancer(s setup, i int) *v1alpha1.LoadBalancer {
	return &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("lb-%d", i), Namespace: namespace(s.group(i))},
		Spec: v1alpha1.LoadBalancerSpec{
			NodeSelector: map[string]string{"group": strconv.Itoa(s.group(i))},
			Listeners:    []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends: []v1alpha1.Backend{{
				Name:        "web",
				HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Path: "/healthz"},
				ServiceRef: &v1alpha1.ServiceReference{Name: fmt.Sprintf("svc-%d", i), Port: intstr.FromString("http"),
					ServerSlots: ptr.To(int32(max(s.endpoints, 1)))},
			}},
		},
	}
}

// waitAll polls until every LoadBalancer's status is current and its
// haproxy.cfg satisfies done.
func waitAll(ctx context.Context, c client.Reader, s setup, done func(lb int, cfg string) bool) error {
	for {
		ready, err := countReady(ctx, c, done)
		if err != nil {
			return err
		}
		if ready == s.lbs {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d LoadBalancers converged (%s): %w", ready, s.lbs, waiting, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// countReady counts the converged LoadBalancers; the first not converged
// is in waiting, with its Degraded condition, for a bench that stalls.
func countReady(ctx context.Context, c client.Reader, done func(int, string) bool) (int, error) {
	var list v1alpha1.LoadBalancerList
	if err := c.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		return 0, err
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms, client.InNamespace(dataPlaneNamespace), client.UnsafeDisableDeepCopy); err != nil {
		return 0, err
	}
	cfg := map[string]string{}
	for _, cm := range cms.Items {
		cfg[cm.Name] = cm.Data[contract.KeyHAProxyConfig]
	}
	ready := 0
	waiting = ""
	for i := range list.Items {
		lb := &list.Items[i]
		var index int
		if _, err := fmt.Sscanf(lb.Name, "lb-%d", &index); err != nil {
			return 0, err
		}
		if lb.Status.ObservedGeneration == lb.Generation && done(index, cfg[desired.NamesFor(lb).HAProxyConfigMap]) {
			ready++
		} else if waiting == "" {
			waiting = lb.Name
			if c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition); c != nil {
				waiting += fmt.Sprintf(" (Degraded %s: %s: %s)", c.Status, c.Reason, c.Message)
			}
		}
	}
	return ready, nil
}

// printMemory prints the manager's resident memory and its peak, and
// returns the peak in KiB.
func printMemory(pid int, when string) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fmt.Printf("manager memory %s: %v\n", when, err)
		return 0
	}
	var fields []string
	hwm := 0
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
			fields = append(fields, strings.Join(strings.Fields(line), " "))
		}
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			hwm, _ = strconv.Atoi(f[1])
		}
	}
	fmt.Printf("manager memory %s: %s\n", when, strings.Join(fields, ", "))
	return hwm
}

// checkAllocations: the LoadBalancers of a group share its nodes, so each
// must have its own router ID there; every virtual IP is its own.
func checkAllocations(ctx context.Context, c client.Client, s setup) error {
	var list v1alpha1.LoadBalancerList
	if err := c.List(ctx, &list); err != nil {
		return err
	}
	seen := map[string]string{}
	vips := map[string]string{}
	for _, lb := range list.Items {
		if len(lb.Status.VirtualIPs) != 1 {
			return fmt.Errorf("%s holds virtual IPs %v, want one", lb.Name, lb.Status.VirtualIPs)
		}
		if other, ok := vips[lb.Status.VirtualIPs[0]]; ok {
			return fmt.Errorf("virtual IP %s given to both %s and %s", lb.Status.VirtualIPs[0], other, lb.Name)
		}
		vips[lb.Status.VirtualIPs[0]] = lb.Name
		id := fmt.Sprintf("%s/%d", lb.Namespace, lb.Status.VirtualRouterID)
		if other, ok := seen[id]; ok || lb.Status.VirtualRouterID == 0 {
			return fmt.Errorf("router ID %s given to both %s and %s", id, other, lb.Name)
		}
		seen[id] = lb.Name
	}
	fmt.Printf("router IDs and virtual IPs: %d LoadBalancers, each with its own router ID on its nodes and its own virtual IP\n", s.lbs)
	return nil
}
