// Command endpoints measures how long an EndpointSlice change takes to reach
// HAProxy on every node of a lab cluster (three real nodes: kubelets,
// containerd, the built images). Each change moves one endpoint to another
// address, which the agents apply through HAProxy's runtime API. From the
// moment the write is sent it times the API server's answer, the
// LoadBalancer's HAProxy ConfigMap holding the new address (the operator's
// part, seen through a watch as the agents see it) and each node's HAProxy
// serving it (polling each node's runtime API every 2 ms). It prints the
// median, 90th and 99th percentiles and the worst of each.
//
//	make bench-endpoints CHANGES=30
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

func main() {
	lab.MaybeRunBackend()
	changes := flag.Int("changes", 30, "EndpointSlice changes to time")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *changes)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench endpoints:", err)
		os.Exit(1)
	}
}

const nodes = 3

func run(ctx context.Context, changes int) error {
	dir, err := os.MkdirTemp("", "hakeeper-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := lab.Start(ctx, lab.Config{Nodes: nodes, Backends: 3, Dir: dir,
		NodeLabels: map[string]string{"hakeeper.io/edge": "true"}})
	if err != nil {
		return err
	}
	defer l.Close()

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "bench", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "bench"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(lab.BackendPort))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{lab.BackendAddr(0)}}, {Addresses: []string{lab.BackendAddr(1)}}},
	}
	lb := &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"},
		Spec: v1alpha1.LoadBalancerSpec{
			VirtualIPs: []string{lab.Prefix + "100"},
			HAProxy:    v1alpha1.HAProxySpec{MaxConnections: ptr.To(int32(4000))},
			Listeners:  []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends: []v1alpha1.Backend{{Name: "web",
				ServiceRef: &v1alpha1.ServiceReference{Name: "bench", Port: intstr.FromString("http"), ServerSlots: ptr.To(int32(4))}}},
		},
	}
	for _, obj := range []client.Object{svc, slice, lb} {
		if err := l.Client.Create(ctx, obj); err != nil {
			return err
		}
	}
	if err := l.WaitActive(ctx, lb, lab.NodeName(0), 2*time.Minute); err != nil {
		return err
	}
	sockets := make([]string, nodes)
	for i := range nodes {
		run, err := l.PodVolume(lab.NodeName(i), lb, desired.VolumeHAProxyRun)
		if err != nil {
			return err
		}
		sockets[i] = filepath.Join(run, contract.RuntimeSocketFile)
	}
	// The bench's own client is not rate limited: client-go's default
	// (5 requests/s) would queue the writes it times.
	cfg := rest.CopyConfig(l.Config)
	cfg.QPS, cfg.Burst = 1000, 1000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	// The ConfigMap is followed through a watch, as the agents follow it.
	w := &configMapWatch{cs: cs, name: desired.NamesFor(lb).HAProxyConfigMap}
	if err := w.open(ctx); err != nil {
		return err
	}
	defer w.stop()

	var write, toConfigMap, toNode []time.Duration
	for i := range changes {
		// The second endpoint moves between two backends: a server
		// address change in its slot, which the runtime API applies.
		addr := lab.BackendAddr(1 + (i+1)%2)
		current, err := cs.DiscoveryV1().EndpointSlices(slice.Namespace).Get(ctx, slice.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		current.Endpoints[1].Addresses = []string{addr}
		start := time.Now()
		if _, err := cs.DiscoveryV1().EndpointSlices(slice.Namespace).Update(ctx, current, metav1.UpdateOptions{}); err != nil {
			return err
		}
		write = append(write, time.Since(start))
		d, err := w.waitFor(ctx, start, func(cm *corev1.ConfigMap) bool {
			return strings.Contains(cm.Data[contract.KeyHAProxyConfig], addr+":")
		})
		if err != nil {
			return fmt.Errorf("change %d, the ConfigMap: %w", i, err)
		}
		toConfigMap = append(toConfigMap, d)
		for n := range nodes {
			d, err := waitFor(ctx, start, func() (bool, error) {
				out, err := haproxyapi.Command(ctx, sockets[n], "show servers state")
				return err == nil && strings.Contains(out, " "+addr+" "), nil
			})
			if err != nil {
				return fmt.Errorf("change %d, %s: %w", i, lab.NodeName(n), err)
			}
			toNode = append(toNode, d)
		}
		time.Sleep(200 * time.Millisecond) // let the nodes report before the next change
	}
	fmt.Printf("%d EndpointSlice changes, %d nodes, one LoadBalancer\n", changes, nodes)
	fmt.Printf("%-34s %8s %8s %8s %8s\n", "from the EndpointSlice write to", "p50", "p90", "p99", "worst")
	fmt.Printf("%-34s %8s %8s %8s %8s\n", "its response (API server)", pct(write, 50), pct(write, 90), pct(write, 99), pct(write, 100))
	fmt.Printf("%-34s %8s %8s %8s %8s\n", "the HAProxy ConfigMap (operator)", pct(toConfigMap, 50), pct(toConfigMap, 90), pct(toConfigMap, 99), pct(toConfigMap, 100))
	fmt.Printf("%-34s %8s %8s %8s %8s\n", "each node's HAProxy (end to end)", pct(toNode, 50), pct(toNode, 90), pct(toNode, 99), pct(toNode, 100))
	return nil
}

// configMapWatch follows one ConfigMap through a watch, as the agents
// follow theirs, and opens it again when the API server ends it (a new
// watch may be refused for a moment while the watch cache catches up).
type configMapWatch struct {
	cs   kubernetes.Interface
	name string
	w    watch.Interface
}

func (c *configMapWatch) open(ctx context.Context) error {
	w, err := c.cs.CoreV1().ConfigMaps(lab.OperatorNamespace).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=" + c.name})
	c.w = w
	return err
}

func (c *configMapWatch) stop() {
	if c.w != nil {
		c.w.Stop()
	}
}

// waitFor reads the watch until a ConfigMap satisfying cond arrives, for
// at most 10 s, and returns the time from start until then.
func (c *configMapWatch) waitFor(ctx context.Context, start time.Time, cond func(*corev1.ConfigMap) bool) (time.Duration, error) {
	deadline := start.Add(10 * time.Second)
	timeout := time.After(time.Until(deadline))
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-timeout:
			return 0, fmt.Errorf("not within 10 s")
		case ev, ok := <-c.w.ResultChan():
			if ok && ev.Type != watch.Error {
				if cm, isCM := ev.Object.(*corev1.ConfigMap); isCM && cond(cm) {
					return time.Since(start), nil
				}
				continue
			}
			c.stop()
			for {
				if time.Now().After(deadline) {
					return 0, fmt.Errorf("not within 10 s")
				}
				if err := c.open(ctx); err == nil {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			// What changed while no watch was open.
			cm, err := c.cs.CoreV1().ConfigMaps(lab.OperatorNamespace).Get(ctx, c.name, metav1.GetOptions{})
			if err != nil {
				return 0, err
			}
			if cond(cm) {
				return time.Since(start), nil
			}
		}
	}
}

// waitFor polls cond every 2 ms for at most 10 s and returns the time
// from start until it held.
func waitFor(ctx context.Context, start time.Time, cond func() (bool, error)) (time.Duration, error) {
	deadline := start.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := cond()
		if err != nil {
			return 0, err
		}
		if ok {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("not within 10 s")
}

func pct(ds []time.Duration, p int) string {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (len(s)*p + 99) / 100
	i = min(max(i-1, 0), len(s)-1)
	return fmt.Sprintf("%.0fms", float64(s[i])/float64(time.Millisecond))
}
