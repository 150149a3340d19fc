package controllers_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/manager"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// The suite runs the real manager against a real kube-apiserver and etcd
// (envtest). envtest runs no kube-controller-manager: no DaemonSet pods and
// no garbage collector. The data plane lives in dataPlaneNamespace, where
// only the LoadBalancer's finalizer deletes it; the TLS Role in the
// LoadBalancer's own namespace is checked for its owner reference.

// dataPlaneNamespace holds every data plane, as in config/.
const dataPlaneNamespace = "hakeeper-system"

var (
	env    *testenv.Env
	k8s    client.Client // the test's own client, not counted
	writes = &writeCounter{byKind: map[string]int{}}
)

// writeCounter counts every write the reconciler sends, by kind.
type writeCounter struct {
	mu     sync.Mutex
	total  int
	byKind map[string]int
}

func (w *writeCounter) add(obj runtime.Object) {
	gvk, _ := apiutil.GVKForObject(obj, manager.Scheme())
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total++
	w.byKind[gvk.Kind]++
}

func (w *writeCounter) snapshot() (int, map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	kinds := make(map[string]int, len(w.byKind))
	for k, v := range w.byKind {
		kinds[k] = v
	}
	return w.total, kinds
}

// noWatch lets the manager's client pass where the interceptor wants a
// client.WithWatch; the reconciler never watches through it.
type noWatch struct{ client.Client }

func (noWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, fmt.Errorf("watch is not supported")
}

func countingClient(c client.Client) client.Client {
	return interceptor.NewClient(noWatch{c}, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			writes.add(obj)
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			writes.add(obj)
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			writes.add(obj)
			return c.Patch(ctx, obj, patch, opts...)
		},
		Apply: func(ctx context.Context, c client.WithWatch, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
			writes.mu.Lock()
			writes.total++
			writes.byKind["apply"]++
			writes.mu.Unlock()
			return c.Apply(ctx, obj, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			writes.add(obj)
			return c.Delete(ctx, obj, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
			writes.mu.Lock()
			writes.total++
			writes.byKind["status"]++
			writes.mu.Unlock()
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	})
}

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.Level(zapLevel())))
	var err error
	env, err = testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	k8s = env.Client
	if err := setupCluster(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mgr, err := manager.New(env.Config, manager.Options{
		MetricsAddr:        "0",
		ProbeAddr:          "0",
		DataPlaneNamespace: dataPlaneNamespace,
		DataPlaneImage:     operatorImage,
		// The metrics ports follow the router IDs (checkDaemonSet).
		DataPlaneMetricsBasePort: metricsBasePort,
		// As the manager's flag defaults: HTTP probes, and HAProxy's health
		// frontend in haproxy.cfg, as in the renderer's goldens.
		DataPlaneHealthBasePort: desired.DefaultHealthBasePort,
		WrapClient:              countingClient,
		Resolve:                 sampleNames,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
		return 1
	}
	return code
}

// sampleNameAddress is what the postgres sample's DNS-named server
// resolves to here. No DNS server answers on this machine, so that one
// name is looked up in a table; every other name goes to the system's
// resolver (localhost, from /etc/hosts).
const sampleName, sampleNameAddress = "pg-standby.db.example.internal", "198.18.0.53"

func sampleNames(ctx context.Context, host string) ([]netip.Addr, error) {
	if host == sampleName {
		return []netip.Addr{netip.MustParseAddr(sampleNameAddress)}, nil
	}
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// operatorImage is the manager's --dataplane-image: the agent's always, and
// HAProxy's and Keepalived's where the class names no image.
const operatorImage = "hakeeper/dataplane:test"

// metricsBasePort is the manager's --dataplane-metrics-base-port in these tests.
const metricsBasePort = 9800

// setupCluster creates what the platform admin installs before the
// operator runs: the data-plane namespace and the sample classes.
func setupCluster(ctx context.Context) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dataPlaneNamespace}}
	if err := k8s.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("failed to create namespace %s: %w", dataPlaneNamespace, err)
	}
	classes, err := sampleClasses()
	if err != nil {
		return err
	}
	for i := range classes {
		if err := k8s.Create(ctx, &classes[i]); err != nil {
			return fmt.Errorf("failed to create LoadBalancerClass %s: %w", classes[i].Name, err)
		}
	}
	return nil
}

// sampleClasses reads every LoadBalancerClass of config/samples/classes.yaml,
// strictly: a field the API does not know fails the suite.
func sampleClasses() ([]v1alpha1.LoadBalancerClass, error) {
	path := filepath.Join(testenv.RepoRoot(), "config", "samples", "classes.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []v1alpha1.LoadBalancerClass
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		var class v1alpha1.LoadBalancerClass
		if err := yaml.UnmarshalStrict(doc, &class); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if class.Kind != "LoadBalancerClass" || class.Name == "" {
			return nil, fmt.Errorf("%s: a document is not a named LoadBalancerClass: %s", path, doc)
		}
		out = append(out, class)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no LoadBalancerClass", path)
	}
	return out, nil
}

// stripComments drops YAML comment lines, to tell an empty document.
func stripComments(doc []byte) []byte {
	var out [][]byte
	for _, line := range bytes.Split(doc, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line)
		}
	}
	return bytes.Join(out, []byte("\n"))
}

// zapLevel keeps the manager quiet unless HAKEEPER_TEST_LOG is set.
func zapLevel() zapcore.Level {
	if os.Getenv("HAKEEPER_TEST_LOG") != "" {
		return zapcore.Level(-2)
	}
	return zapcore.ErrorLevel
}

// eventually polls cond until it returns nil or the timeout passes; the
// timeout is generous, since it only bounds a failure.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		if last = cond(); last == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s: %v", what, last)
}

func namespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := k8s.Create(context.Background(), ns); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	return name
}

// testDataPlaneLabel is on every node the tests create, and testClass
// selects it: a class must name its nodes.
const testDataPlaneLabel = "hakeeper.io/test-dataplane"

// node creates a Node with an InternalIP and labels, removed at cleanup.
func node(t *testing.T, name, ip string, labels map[string]string, taints ...corev1.Taint) *corev1.Node {
	t.Helper()
	all := map[string]string{testDataPlaneLabel: "true"}
	maps.Copy(all, labels)
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: all}, Spec: corev1.NodeSpec{Taints: taints}}
	if err := k8s.Create(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}, {Type: corev1.NodeHostName, Address: name}}
	if err := k8s.Status().Update(context.Background(), n); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), n) })
	return n
}

// service creates a Service with one named port and an EndpointSlice of
// ready endpoints per address family.
func service(t *testing.T, ns, name, portName string, port, target int32, addrs ...string) {
	t.Helper()
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: portName, Port: port}}},
	}
	if err := k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	endpointSlice(t, ns, name+"-v4", name, portName, target, discoveryv1.AddressTypeIPv4, filterFamily(addrs, true)...)
	if v6 := filterFamily(addrs, false); len(v6) > 0 {
		endpointSlice(t, ns, name+"-v6", name, portName, target, discoveryv1.AddressTypeIPv6, v6...)
	}
}

func endpointSlice(t *testing.T, ns, name, svc, portName string, port int32, family discoveryv1.AddressType, addrs ...string) *discoveryv1.EndpointSlice {
	t.Helper()
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: family,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port)}},
	}
	for _, a := range addrs {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{a}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}})
	}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s
}

func filterFamily(addrs []string, v4 bool) []string {
	var out []string
	for _, a := range addrs {
		isV4 := !containsColon(a)
		if isV4 == v4 {
			out = append(out, a)
		}
	}
	return out
}

func containsColon(s string) bool {
	for _, c := range s {
		if c == ':' {
			return true
		}
	}
	return false
}

// reconciles is how many times the reconciler has finished a reconcile of
// lb, whatever the outcome (hakeeper_loadbalancer_reconciles_total): the
// proof that a "nothing changed" check follows a reconcile that could
// have changed it.
func reconciles(t *testing.T, lb *v1alpha1.LoadBalancer) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, f := range families {
		if f.GetName() != "hakeeper_loadbalancer_reconciles_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["loadbalancer_namespace"] == lb.Namespace && labels["loadbalancer"] == lb.Name {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// reconciledAgain waits until lb has been reconciled n more times than
// before.
func reconciledAgain(t *testing.T, lb *v1alpha1.LoadBalancer, before float64, n int) {
	t.Helper()
	eventually(t, fmt.Sprintf("%d more reconciles of %s", n, lb.Name), func() error {
		if got := reconciles(t, lb); got < before+float64(n) {
			return fmt.Errorf("%v reconciles, want %v", got, before+float64(n))
		}
		return nil
	})
}
