// Command scale measures the operator at scale on the local control plane:
// N LoadBalancers, each with a Service of M ready endpoints, reconciled by
// the real `hakeeper manager` binary running as its own process. It prints
// the time until every LoadBalancer's ConfigMaps hold all endpoints and its
// status is current, the time for an endpoint change in every Service to
// reach every ConfigMap, and the manager's memory (VmRSS, VmHWM).
//
//	go run ./hack/bench/scale -lbs 100 -endpoints 50
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testenv"
)

func main() {
	lbs := flag.Int("lbs", 100, "LoadBalancers to create")
	endpoints := flag.Int("endpoints", 50, "ready endpoints per LoadBalancer's Service")
	nodes := flag.Int("nodes", 3, "nodes running every LoadBalancer")
	binary := flag.String("hakeeper", "bin/hakeeper", "the hakeeper binary to run as the manager")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*lbs, *endpoints, *nodes, *binary, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

// dataPlaneNamespace holds the data planes, as in config/default.
const dataPlaneNamespace = "hakeeper-system"

func run(lbs, endpoints, nodes int, binary string, timeout time.Duration) error {
	if lbs > 250 || endpoints > 250 {
		return fmt.Errorf("at most 250 LoadBalancers and 250 endpoints each: addresses come from 198.18.0.0/15")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	env, err := testenv.Start()
	if err != nil {
		return err
	}
	defer func() { _ = env.Stop() }()
	c := env.Client
	dir, err := os.MkdirTemp("", "hakeeper-scale")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		return err
	}
	mgr := exec.CommandContext(ctx, binary, "manager", "--kubeconfig="+kubeconfig, "--metrics-bind-address=0",
		"--health-probe-bind-address=0", "--dataplane-image=hakeeper/dataplane:bench", "--zap-log-level=error",
		"--dataplane-namespace="+dataPlaneNamespace)
	mgr.Stderr = os.Stderr
	if err := mgr.Start(); err != nil {
		return fmt.Errorf("failed to start %s: %w", binary, err)
	}
	defer func() { _ = mgr.Process.Signal(syscall.SIGTERM); _ = mgr.Wait() }()

	const ns = "bench"
	for _, name := range []string{ns, dataPlaneNamespace} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
			return err
		}
	}
	// Every LoadBalancer takes its virtual IP from the class's pool.
	if err := c.Create(ctx, &v1alpha1.LoadBalancerClass{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Annotations: map[string]string{v1alpha1.AnnotationDefaultClass: "true"}},
		Spec: v1alpha1.LoadBalancerClassSpec{
			VirtualIPPools: []v1alpha1.VirtualIPPool{{Name: "bench", CIDR: "198.18.128.0/24"}},
			DataPlane:      v1alpha1.DataPlaneSpec{NodeSelector: map[string]string{"pool": "bench"}, Interface: "eth0"},
			// One namespace holds them all.
			Limits: v1alpha1.ClassLimits{MaxLoadBalancersPerNamespace: ptr.To[int32](255), MaxVirtualIPsPerNamespace: ptr.To[int32](4096)},
		},
	}); err != nil {
		return err
	}
	for i := range nodes {
		if err := createNode(ctx, c, i); err != nil {
			return err
		}
	}
	for i := range lbs {
		if err := createService(ctx, c, ns, i, endpoints); err != nil {
			return err
		}
	}
	fmt.Printf("hakeeper scale: %d LoadBalancers x %d endpoints, %d nodes, manager pid %d\n", lbs, endpoints, nodes, mgr.Process.Pid)
	start := time.Now()
	for i := range lbs {
		if err := c.Create(ctx, loadBalancer(ns, i, endpoints)); err != nil {
			return err
		}
	}
	created := time.Since(start)
	if err := waitAll(ctx, c, ns, lbs, func(_ int, cfg string) bool {
		return strings.Count(cfg, "server ep_")-strings.Count(cfg, " disabled") == endpoints
	}); err != nil {
		return err
	}
	converged := time.Since(start)
	fmt.Printf("created in %.2fs; converged (every ConfigMap holds %d endpoints, status current) after %.2fs\n", created.Seconds(), endpoints, converged.Seconds())
	printMemory(mgr.Process.Pid, "after converging")
	if err := checkRouterIDs(ctx, c, ns, lbs); err != nil {
		return err
	}

	// One endpoint replaced in every Service: the time until every
	// haproxy.cfg carries it.
	start = time.Now()
	for i := range lbs {
		if err := replaceEndpoint(ctx, c, ns, i); err != nil {
			return err
		}
	}
	if err := waitAll(ctx, c, ns, lbs, func(i int, cfg string) bool { return strings.Contains(cfg, replacement(i)+":8080 ") }); err != nil {
		return err
	}
	fmt.Printf("endpoint change in all %d Services reached every ConfigMap after %.2fs\n", lbs, time.Since(start).Seconds())
	printMemory(mgr.Process.Pid, "after the endpoint change")
	return nil
}

func createNode(ctx context.Context, c client.Client, i int) error {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-%d", i), Labels: map[string]string{"pool": "bench"}}}
	if err := c.Create(ctx, n); err != nil {
		return err
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: fmt.Sprintf("198.18.255.%d", i+1)}}
	return c.Status().Update(ctx, n)
}

func endpointAddr(lb, ep int) string { return fmt.Sprintf("198.19.%d.%d", lb, ep+1) }
func replacement(lb int) string      { return fmt.Sprintf("198.19.%d.254", lb) }

func createService(ctx context.Context, c client.Client, ns string, i, endpoints int) error {
	name := fmt.Sprintf("svc-%d", i)
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	if err := c.Create(ctx, svc); err != nil {
		return err
	}
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(8080))}},
	}
	for e := range endpoints {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{endpointAddr(i, e)}})
	}
	return c.Create(ctx, s)
}

func replaceEndpoint(ctx context.Context, c client.Client, ns string, i int) error {
	s := &discoveryv1.EndpointSlice{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: fmt.Sprintf("svc-%d", i)}, s); err != nil {
		return err
	}
	s.Endpoints[0].Addresses = []string{replacement(i)}
	return c.Update(ctx, s)
}

func loadBalancer(ns string, i, endpoints int) *v1alpha1.LoadBalancer {
	return &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("lb-%d", i), Namespace: ns},
		Spec: v1alpha1.LoadBalancerSpec{
			Listeners: []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends: []v1alpha1.Backend{{
				Name:        "web",
				HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Path: "/healthz"},
				ServiceRef: &v1alpha1.ServiceReference{Name: fmt.Sprintf("svc-%d", i), Port: intstr.FromString("http"),
					ServerSlots: ptr.To(int32(max(endpoints, 1)))},
			}},
		},
	}
}

// waitAll polls until every LoadBalancer's status is current and its
// haproxy.cfg satisfies done.
func waitAll(ctx context.Context, c client.Client, ns string, lbs int, done func(lb int, cfg string) bool) error {
	for {
		ready, err := countReady(ctx, c, ns, done)
		if err != nil {
			return err
		}
		if ready == lbs {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("only %d of %d LoadBalancers converged: %w", ready, lbs, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func countReady(ctx context.Context, c client.Client, ns string, done func(int, string) bool) (int, error) {
	var list v1alpha1.LoadBalancerList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return 0, err
	}
	var cms corev1.ConfigMapList
	if err := c.List(ctx, &cms, client.InNamespace(dataPlaneNamespace)); err != nil {
		return 0, err
	}
	cfg := map[string]string{}
	for _, cm := range cms.Items {
		cfg[cm.Name] = cm.Data[contract.KeyHAProxyConfig]
	}
	ready := 0
	for i := range list.Items {
		lb := &list.Items[i]
		var index int
		if _, err := fmt.Sscanf(lb.Name, "lb-%d", &index); err != nil {
			return 0, err
		}
		if lb.Status.ObservedGeneration == lb.Generation && done(index, cfg[desired.NamesFor(lb).HAProxyConfigMap]) {
			ready++
		}
	}
	return ready, nil
}

func printMemory(pid int, when string) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		fmt.Printf("manager memory %s: %v\n", when, err)
		return
	}
	var fields []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") || strings.HasPrefix(line, "VmHWM:") {
			fields = append(fields, strings.Join(strings.Fields(line), " "))
		}
	}
	fmt.Printf("manager memory %s: %s\n", when, strings.Join(fields, ", "))
}

// checkRouterIDs: every LoadBalancer shares the same nodes, so each must
// have its own router ID, and each its own allocated virtual IP.
func checkRouterIDs(ctx context.Context, c client.Client, ns string, lbs int) error {
	var list v1alpha1.LoadBalancerList
	if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
		return err
	}
	seen := map[int32]string{}
	vips := map[string]string{}
	for _, lb := range list.Items {
		if len(lb.Status.VirtualIPs) != 1 {
			return fmt.Errorf("%s holds virtual IPs %v, want one", lb.Name, lb.Status.VirtualIPs)
		}
		if other, ok := vips[lb.Status.VirtualIPs[0]]; ok {
			return fmt.Errorf("virtual IP %s given to both %s and %s", lb.Status.VirtualIPs[0], other, lb.Name)
		}
		vips[lb.Status.VirtualIPs[0]] = lb.Name
		id := lb.Status.VirtualRouterID
		if other, ok := seen[id]; ok || id == 0 {
			return fmt.Errorf("router ID %d given to both %s and %s", id, other, lb.Name)
		}
		seen[id] = lb.Name
	}
	fmt.Printf("router IDs and virtual IPs: %d and %d distinct for %d LoadBalancers on shared nodes\n", len(seen), len(vips), lbs)
	return nil
}
