package e2e

// The website LoadBalancer most scenarios share, its variants, and the
// waits every scenario uses.

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// website is the lab's LoadBalancer: backend-1 and backend-2 serve /,
// backend-3 serves /api.
func website() *v1alpha1.LoadBalancer {
	check := &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Path: "/healthz",
		IntervalMilliseconds: ptr.To(int32(300)), TimeoutMilliseconds: ptr.To(int32(200)), Rise: ptr.To(int32(2)), Fall: ptr.To(int32(2))}
	return &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: v1alpha1.LoadBalancerSpec{
			VirtualIPs: []string{vip},
			VRRP: v1alpha1.VRRPSpec{
				// No preempt delay: keepalived 2.2.7 applies preempt_delay
				// also when the master goes FAULT (priority 0), so a backup
				// waits the whole delay before taking over (measured here:
				// a 5.3 s outage with 5 s).
				// Every priority pinned: the scenarios expect node-a master
				// and node-b first backup in each of their LoadBalancers,
				// where derived priorities would spread the masters and
				// first backups over the nodes.
				Priorities: []v1alpha1.NodePriority{{Node: lab.NodeName(0), Priority: 150},
					{Node: lab.NodeName(1), Priority: 100}, {Node: lab.NodeName(2), Priority: 50}},
			},
			// The sandbox caps open files at 20000; HAProxy's default of
			// 20000 connections needs twice that (nodes usually allow 1M).
			HAProxy: v1alpha1.HAProxySpec{MaxConnections: ptr.To(int32(4000))},
			Listeners: []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web",
				Routes: []v1alpha1.Route{{PathPrefix: "/api", Backend: "api"}}}},
			Backends: []v1alpha1.Backend{
				{Name: "web", HealthCheck: check, Servers: []v1alpha1.Server{
					{Name: "b1", Address: lab.BackendAddr(0), Port: lab.BackendPort},
					{Name: "b2", Address: lab.BackendAddr(1), Port: lab.BackendPort},
				}},
				{Name: "api", HealthCheck: check, Servers: []v1alpha1.Server{{Name: "b3", Address: lab.BackendAddr(2), Port: lab.BackendPort}}},
			},
		},
	}
}

// applyWebsite creates the website LoadBalancer once and waits until it is
// Ready on node-a.
func applyWebsite(t *testing.T, l *lab.Lab) *v1alpha1.LoadBalancer {
	t.Helper()
	lb := website()
	err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), &v1alpha1.LoadBalancer{})
	if err != nil {
		if err := l.Client.Create(ctx, lb); err != nil {
			t.Fatal(err)
		}
	}
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)
	return lb
}
func waitActive(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, node string, timeout time.Duration) {
	t.Helper()
	if err := l.WaitActive(ctx, lb, node, timeout); err != nil {
		logPods(t, l, lb)
		t.Fatal(err)
	}
}

// logPods shows the end of every data-plane container's log, through the
// API server and the kubelets as `kubectl logs` reads them, for a failure
// (the kubelet removes the logs with the pods).
func logPods(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	out, err := l.Kubectl(ctx, "get", "pods", "-n", lab.OperatorNamespace, "-o", "wide", "-l", desired.LabelLoadBalancer+"="+lb.Name)
	t.Logf("data-plane pods of %s: %v\n%s", lb.Name, err, out)
	out, err = l.Kubectl(ctx, "logs", "-n", lab.OperatorNamespace, "-l", desired.LabelLoadBalancer+"="+lb.Name,
		"--all-containers", "--prefix", "--tail=60", "--max-log-requests=20")
	t.Logf("their logs: %v\n%s", err, out)
}

// waitHolder waits until node's interface carries addr, looking every
// 10 ms.
func waitHolder(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, node, addr string, timeout time.Duration) {
	t.Helper()
	if err := lab.Poll(ctx, 10*time.Millisecond, timeout, func() error {
		if l.HoldsVIP(node, addr) {
			return nil
		}
		return fmt.Errorf("%s does not hold %s", node, addr)
	}); err != nil {
		logPods(t, l, lb)
		t.Fatal(err)
	}
}

// eventually waits for cond, looking every 100 ms.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	if err := lab.Poll(ctx, 100*time.Millisecond, timeout, cond); err != nil {
		t.Fatalf("timed out waiting for %s: %v", what, err)
	}
}

// variant is the website under another name and VIP, so scenarios do not
// disturb each other.
func variant(name, addr string) *v1alpha1.LoadBalancer {
	lb := website()
	lb.Name = name
	lb.Spec.VirtualIPs = []string{addr}
	return lb
}
func createAndWait(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	if err := l.Client.Create(ctx, lb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, lb) })
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)
}

// newVIP is an address of the lab class's pool for this scenario alone.
func newVIP(t *testing.T) string {
	t.Helper()
	addr, err := lab.NextVirtualIP()
	if err != nil {
		t.Fatal(err)
	}
	return addr
}

// newNamespace makes a namespace of the scenario's own, named from prefix
// by the API server, with labels, and removes it when the scenario ends.
func newNamespace(t *testing.T, l *lab.Lab, prefix string, labels map[string]string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix + "-", Labels: labels}}
	if err := l.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, ns) })
	return ns.Name
}
