package e2e

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/controllers"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/servicelb"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// The Services scenarios share one class and namespace. The class is a
// copy of the lab's that also allows the pods' addresses as backends,
// caps connections below the sandbox's file limit (a Service sets none,
// and HAProxy's default needs twice the limit), and selects only the
// namespaces named here.
const (
	servicesClass = "services"
)

// TestServicesOnRealNodes: Services of type LoadBalancer of class
// hakeeper.io/services, served by the lab's three nodes (real kubelets,
// containerd, kube-proxy, haproxy and keepalived, a 10 ms probe):
//   - a Deployment of the echo workload behind a Service gets the address
//     it asked for with ipMode Proxy; requests reach every pod; 53/TCP is
//     served and 53/UDP reported; kube-proxy routes the Service's cluster
//     IP and writes no rule for the address on any node;
//   - scaling 3 -> 10 -> 0 -> 3 reaches HAProxy with no reload and no
//     request lost while scaling up; at 0 the address stays held;
//   - HAProxy killed on the master: the outage is quoted;
//   - an address outside the pools, a namespace the class does not
//     select, another implementation's class and no class: nothing
//     written, the first two told why;
//   - a tenant who may write Services but not LoadBalancers gets one
//     served, and an EndpointSlice pointing at a node is refused, named;
//   - deleting the Service frees its address (another Service gets it),
//     which passes the client's address to its pods in a PROXY header
//     (externalTrafficPolicy Local); changing its type clears it.
func TestServicesOnRealNodes(t *testing.T) {
	l := requireLab(t)
	// The class selects default and the tenant's namespace, not the other.
	tenantNS, elsewhereNS := newNamespace(t, l, "svc-tenant", nil), newNamespace(t, l, "svc-elsewhere", nil)
	createServicesClass(t, l, servicesClass, "default", tenantNS)

	// Left alone, created first so that the operator has had every chance
	// to touch them by the time they are checked.
	outside := echoService("svc-outside", "echo", servicelb.ClassPrefix+servicesClass)
	outside.Annotations = map[string]string{servicelb.AnnotationLoadBalancerIPs: lab.Prefix + "250"}
	elsewhere := echoService("svc-elsewhere", "echo", servicelb.ClassPrefix+servicesClass)
	elsewhere.Namespace = elsewhereNS
	metallb := echoService("svc-metallb", "echo", "metallb.io/l2")
	classless := echoService("svc-classless", "echo", "")
	for _, svc := range []*corev1.Service{outside, elsewhere, metallb, classless} {
		createObject(t, l, svc)
	}

	echo := l.EchoDeployment("default", "echo", 3, false)
	createObject(t, l, echo)
	web := echoService("svc-web", "echo", servicelb.ClassPrefix+servicesClass)
	ip := newVIP(t)
	web.Annotations = map[string]string{servicelb.AnnotationLoadBalancerIPs: ip}
	web.Spec.Ports = append(web.Spec.Ports,
		corev1.ServicePort{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(lab.EchoPort)},
		corev1.ServicePort{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(lab.EchoPort)})
	createObject(t, l, web)
	if err := l.WaitDeployment(ctx, "default", echo.Name, 2*time.Minute); err != nil {
		t.Fatal(err)
	}

	// Served: the requested address, with ipMode Proxy, held by one node.
	waitIngress(t, l, web, ip)
	lb := &v1alpha1.LoadBalancer{}
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(web), lb); err != nil {
		t.Fatal(err)
	}
	// Settled: the node of highest priority holds the address. Until its
	// pod is up another node does, and its taking the address back is a
	// planned move that may reset a request in flight, which the scaling
	// below must not be charged with (seen once in three runs, when
	// node-a's pod started last).
	waitActive(t, l, lb, preferred(t, l, lb), 2*time.Minute)
	// One holder: the nodes hear each other's adverts on the class's
	// group for this router ID (had they not, each would be master).
	if holders := holdersOf(l, ip); len(holders) != 1 {
		t.Errorf("%s is held by %v, want one node", ip, holders)
	}
	keepalived := &corev1.ConfigMap{}
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: desired.NamesFor(lb).KeepalivedConfigMap}, keepalived); err != nil {
		t.Fatal(err)
	}
	group := fmt.Sprintf("vrrp_mcast_group4 239.255.18.%d\n", lb.Status.VirtualRouterID)
	if conf := keepalived.Data[lab.NodeName(0)+contract.KeepalivedKeySuffix]; !strings.Contains(conf, group) {
		t.Errorf("keepalived.conf of %s has no %q:\n%s", lab.NodeName(0), group, conf)
	}
	if c := meta.FindStatusCondition(web.Status.Conditions, controllers.ConditionLoadBalancerPortsError); c == nil || c.Status != metav1.ConditionTrue ||
		!strings.Contains(c.Message, "53/UDP") {
		t.Errorf("the UDP port is not reported: %+v", web.Status.Conditions)
	}
	for _, p := range web.Status.LoadBalancer.Ingress[0].Ports {
		if (p.Protocol == corev1.ProtocolUDP) != (p.Error != nil && *p.Error == servicelb.ErrorProtocolNotProxied) {
			t.Errorf("port %d/%s: error %v", p.Port, p.Protocol, p.Error)
		}
	}
	// What Flux and `kubectl wait --for=jsonpath` read (Argo CD's built-in
	// check for Services asks the same: an ingress for type LoadBalancer).
	if res := serviceKstatus(t, web); res.Status != kstatus.CurrentStatus {
		t.Errorf("kstatus of the served Service: %s (%s)", res.Status, res.Message)
	}
	serversUp(t, l, lb, "http", 3)
	reachesEveryPod(t, l, "http://"+ip+"/", echo, 3)
	if body, err := l.NewClient(2*time.Second).Get(ctx, "http://"+ip+":53/", ""); err != nil || !strings.HasPrefix(body, "pod=echo-") {
		t.Errorf("53/TCP through %s: %q, %v", ip, body, err)
	}
	kubeProxyLeavesAlone(t, l, web, ip)
	clusterIPServes(t, l, web)

	// Scaling reaches HAProxy through its runtime API: no reload on any
	// node, and nothing lost while pods are added.
	before := map[string]int{}
	for i := range 3 {
		before[lab.NodeName(i)] = reloads(t, l, lab.NodeName(i), lb)
	}
	probe := l.NewClient(200*time.Millisecond).StartProbe("http://"+ip+"/", 10*time.Millisecond, 3*time.Minute)
	scaled := time.Now()
	scale(t, l, echo, 10)
	serversUp(t, l, lb, "http", 10)
	_, answered, failed := probe.Stop()
	t.Logf("scaling 3 -> 10: %d requests answered, %d failed", answered, failed)
	if failed > 0 || answered == 0 {
		t.Errorf("scaling up: %d requests failed of %d: %v", failed, answered+failed, probe.Errors())
		explainLoss(t, l, lb, probe, scaled)
	}
	reachesEveryPod(t, l, "http://"+ip+"/", echo, 10)
	scale(t, l, echo, 0)
	serversUp(t, l, lb, "http", 0)
	// No servers: the address stays, and kube-proxy still has no rule for
	// it (with ipMode VIP it would REJECT it on every node for lack of
	// endpoints).
	if holders := holdersOf(l, ip); len(holders) != 1 {
		t.Errorf("scaled to 0: %s is held by %v, want one node", ip, holders)
	}
	waitIngress(t, l, web, ip)
	kubeProxyLeavesAlone(t, l, web, ip)
	scale(t, l, echo, 3)
	serversUp(t, l, lb, "http", 3)
	reachesEveryPod(t, l, "http://"+ip+"/", echo, 3)
	for i := range 3 {
		n := lab.NodeName(i)
		if got := reloads(t, l, n, lb); got != before[n] {
			t.Errorf("%s: HAProxy reloaded %d times while scaling, want none", n, got-before[n])
		}
	}

	// HAProxy killed on the master.
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), lb); err != nil {
		t.Fatal(err)
	}
	master, next := lb.Status.ActiveNode, successor(lb)
	outage := failover(t, l, lb, next, func() error { return l.Kill(master, lb, "haproxy") })
	t.Logf("Service svc-web: HAProxy killed on %s, %s took over; outage %.3f s", master, next, outage.Seconds())
	waitActive(t, l, lb, master, 60*time.Second)

	// Nothing written for the Services left alone; two of them told why.
	waitEvent(t, l, outside, controllers.EventAllocationFailed, lab.Prefix+"250 is in none of LoadBalancerClass services's pools")
	waitEvent(t, l, elsewhere, controllers.EventSyncLoadBalancerFailed, "does not allow namespace "+elsewhereNS)
	for _, svc := range []*corev1.Service{outside, elsewhere, metallb, classless} {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(svc), &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
			t.Errorf("LoadBalancer written for Service %s/%s: %v", svc.Namespace, svc.Name, err)
		}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
			t.Fatal(err)
		}
		if len(svc.Status.LoadBalancer.Ingress) > 0 {
			t.Errorf("Service %s/%s got an address: %+v", svc.Namespace, svc.Name, svc.Status.LoadBalancer.Ingress)
		}
	}

	tenantServices(t, l, tenantNS)

	// Deleted: the data plane goes, and the address is free again.
	deleteServiceAndWait(t, l, web, lb)
	pp := l.EchoDeployment("default", "echo-pp", 2, true)
	createObject(t, l, pp)
	web2 := echoService("svc-web2", "echo-pp", servicelb.ClassPrefix+servicesClass)
	web2.Annotations = map[string]string{servicelb.AnnotationLoadBalancerIPs: ip, servicelb.AnnotationProxyProtocol: "v2"}
	web2.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	createObject(t, l, web2)
	if err := l.WaitDeployment(ctx, "default", pp.Name, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, l, web2, ip)
	// externalTrafficPolicy Local, honoured by a PROXY v2 header: the pods
	// see the client's own address.
	eventually(t, 60*time.Second, "the client's address at the pods", func() error {
		body, err := l.NewClient(2*time.Second).Get(ctx, "http://"+ip+"/", "")
		if err != nil {
			return err
		}
		if !strings.Contains(body, "client="+lab.ClientAddr+":") {
			return fmt.Errorf("the pod saw %q, want client=%s", strings.TrimSpace(body), lab.ClientAddr)
		}
		return nil
	})

	// Type changed away: the address is cleared and the LoadBalancer goes.
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(web2), web2); err != nil {
		t.Fatal(err)
	}
	web2.Spec.Type, web2.Spec.LoadBalancerClass, web2.Spec.ExternalTrafficPolicy = corev1.ServiceTypeClusterIP, nil, ""
	web2.Spec.AllocateLoadBalancerNodePorts = nil
	if err := l.Client.Update(ctx, web2); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the address cleared and the LoadBalancer gone", func() error {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(web2), &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("LoadBalancer: %v", err)
		}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(web2), web2); err != nil {
			return err
		}
		if len(web2.Status.LoadBalancer.Ingress) > 0 {
			return fmt.Errorf("ingress %+v", web2.Status.LoadBalancer.Ingress)
		}
		return nil
	})
}

// servicesMulticastGroups is the services class's block of VRRP groups.
const servicesMulticastGroups = "239.255.18.0/24"

// createServicesClass copies the lab's class as a Services' class that
// allows the namespaces named.
func createServicesClass(t *testing.T, l *lab.Lab, name string, namespaces ...string) {
	t.Helper()
	labClass := &v1alpha1.LoadBalancerClass{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: lab.ClassName}, labClass); err != nil {
		t.Fatal(err)
	}
	class := &v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: *labClass.Spec.DeepCopy()}
	class.Spec.Limits.MaxConnections = ptr.To(int32(4000))
	// Each LoadBalancer of the class advertises to a group of its own
	// (the lab's bridge floods them: it has no IGMP querier).
	class.Spec.VRRP.MulticastGroups = &v1alpha1.VRRPMulticastGroups{IPv4: servicesMulticastGroups}
	class.Spec.Backends.AllowedCIDRs = append(class.Spec.Backends.AllowedCIDRs, lab.PodRanges)
	class.Spec.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: namespaces}}}
	if err := l.Client.Create(ctx, class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, class) })
}

// echoService is a Service of type LoadBalancer in default whose port 80
// leads to the pods labelled app=<app>.
func echoService(name, app, class string) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.ServiceSpec{
		Type:     corev1.ServiceTypeLoadBalancer,
		Selector: map[string]string{"app": app},
		Ports:    []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(lab.EchoPort)}},
		// HAProxy goes to the pods: no NodePort is needed.
		AllocateLoadBalancerNodePorts: ptr.To(false),
	}}
	if class != "" {
		svc.Spec.LoadBalancerClass = ptr.To(class)
	}
	return svc
}

func createObject(t *testing.T, l *lab.Lab, obj client.Object) {
	t.Helper()
	if err := l.Client.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, obj) })
}

// waitIngress waits until the Service shows addr (any, if empty) with
// ipMode Proxy.
func waitIngress(t *testing.T, l *lab.Lab, svc *corev1.Service, addr string) {
	t.Helper()
	eventually(t, 2*time.Minute, "Service "+svc.Name+" at "+addr+" with ipMode Proxy", func() error {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
			return err
		}
		in := svc.Status.LoadBalancer.Ingress
		if len(in) != 1 || (addr != "" && in[0].IP != addr) || in[0].IPMode == nil || *in[0].IPMode != corev1.LoadBalancerIPModeProxy {
			lb := &v1alpha1.LoadBalancer{}
			if err := l.Client.Get(ctx, client.ObjectKeyFromObject(svc), lb); err != nil {
				return fmt.Errorf("ingress %+v; LoadBalancer: %v", in, err)
			}
			return fmt.Errorf("ingress %+v; LoadBalancer status %+v", in, lb.Status.Conditions)
		}
		return nil
	})
}

func serviceKstatus(t *testing.T, svc *corev1.Service) *kstatus.Result {
	t.Helper()
	obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(svc)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	u.SetAPIVersion("v1")
	u.SetKind("Service")
	res, err := kstatus.Compute(u)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func holdersOf(l *lab.Lab, addr string) []string {
	var out []string
	for i := range 3 {
		if l.HoldsVIP(lab.NodeName(i), addr) {
			out = append(out, lab.NodeName(i))
		}
	}
	return out
}

var podAnswer = regexp.MustCompile(`^pod=(\S+) `)

// reachesEveryPod requests url until every ready pod of the Deployment
// has answered, within a bounded number of requests.
func reachesEveryPod(t *testing.T, l *lab.Lab, url string, d *appsv1.Deployment, n int) {
	t.Helper()
	pods := readyPods(t, l, d.Namespace, d.Spec.Selector.MatchLabels, n)
	want := map[string]bool{}
	for _, p := range pods {
		want[p.Name] = true
	}
	c := l.NewClient(2 * time.Second)
	seen := map[string]bool{}
	for i := 0; i < 40*n && len(seen) < len(want); i++ {
		body, err := c.Get(ctx, url, "")
		if err != nil {
			t.Fatalf("%s: %v", url, err)
		}
		m := podAnswer.FindStringSubmatch(body)
		if m == nil || !want[m[1]] {
			t.Fatalf("%s answered %q, not one of the ready pods %v", url, body, want)
		}
		seen[m[1]] = true
	}
	if len(seen) != len(want) {
		t.Errorf("%s reached %d of the %d pods: %v", url, len(seen), len(want), seen)
	}
}

// kubeProxyLeavesAlone checks every node's iptables: kube-proxy routes the
// Service's cluster IP and has no rule for the address published with
// ipMode Proxy.
func kubeProxyLeavesAlone(t *testing.T, l *lab.Lab, svc *corev1.Service, addr string) {
	t.Helper()
	for i := range 3 {
		n := lab.NodeName(i)
		eventually(t, 30*time.Second, "kube-proxy on "+n+" routing "+svc.Name, func() error {
			rules, err := l.IPTablesRules(ctx, n)
			if err != nil {
				return err
			}
			if !strings.Contains(rules, svc.Spec.ClusterIP+"/32") {
				return fmt.Errorf("no rule for the cluster IP %s", svc.Spec.ClusterIP)
			}
			if strings.Contains(rules, addr+"/32") || strings.Contains(rules, addr+" ") {
				var lines []string
				for _, line := range strings.Split(rules, "\n") {
					if strings.Contains(line, addr) {
						lines = append(lines, line)
					}
				}
				t.Errorf("%s: kube-proxy has rules for %s, published with ipMode Proxy:\n%s", n, addr, strings.Join(lines, "\n"))
			}
			return nil
		})
	}
}

// clusterIPServes connects to the Service's cluster IP from a node, as a
// host-network client would: kube-proxy's rule leads to a pod.
func clusterIPServes(t *testing.T, l *lab.Lab, svc *corev1.Service) {
	t.Helper()
	script := fmt.Sprintf(`exec 3<>/dev/tcp/%s/80 && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && timeout 5 cat <&3`, svc.Spec.ClusterIP)
	cmd, err := l.NodeCommand(ctx, lab.NodeName(2), "timeout", "10", "bash", "-c", script)
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "pod=echo-") {
		t.Errorf("the cluster IP %s from %s: %v: %s", svc.Spec.ClusterIP, lab.NodeName(2), err, out)
	}
}

func scale(t *testing.T, l *lab.Lab, d *appsv1.Deployment, replicas int32) {
	t.Helper()
	got := &appsv1.Deployment{}
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(got.DeepCopy())
	got.Spec.Replicas = ptr.To(replicas)
	if err := l.Client.Patch(ctx, got, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, fmt.Sprintf("%s at %d ready pods", d.Name, replicas), func() error {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			return err
		}
		pods, err := l.Pods(ctx, d.Namespace, d.Spec.Selector.MatchLabels)
		if err != nil {
			return err
		}
		if got.Status.ReadyReplicas != replicas || got.Status.UpdatedReplicas != replicas || len(pods) != int(replicas) {
			return fmt.Errorf("%d ready, %d pods", got.Status.ReadyReplicas, len(pods))
		}
		return nil
	})
}

// successor is the node that takes the virtual IPs from the master: the
// highest priority of the others.
// preferred is the node of highest priority, once every lab node is in
// the LoadBalancer's status.
func preferred(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) string {
	t.Helper()
	best := ""
	eventually(t, 2*time.Minute, "every node in the status of "+lb.Name, func() error {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		if len(got.Status.Nodes) != 3 { // the lab's nodes
			return fmt.Errorf("nodes %+v", got.Status.Nodes)
		}
		top := slices.MaxFunc(got.Status.Nodes, func(a, b v1alpha1.NodeStatus) int { return int(a.Priority - b.Priority) })
		best = top.Name
		return nil
	})
	return best
}

func successor(lb *v1alpha1.LoadBalancer) string {
	others := slices.DeleteFunc(slices.Clone(lb.Status.Nodes), func(n v1alpha1.NodeStatus) bool { return n.Name == lb.Status.ActiveNode })
	slices.SortFunc(others, func(a, b v1alpha1.NodeStatus) int { return int(b.Priority - a.Priority) })
	if len(others) == 0 {
		return ""
	}
	return others[0].Name
}

// waitEvent waits for an event on obj with reason whose note contains want.
func waitEvent(t *testing.T, l *lab.Lab, obj client.Object, reason, want string) {
	t.Helper()
	eventually(t, time.Minute, fmt.Sprintf("event %s on %s", reason, obj.GetName()), func() error {
		var list eventsv1.EventList
		if err := l.Client.List(ctx, &list, client.InNamespace(obj.GetNamespace())); err != nil {
			return err
		}
		var notes []string
		for _, e := range list.Items {
			if e.Regarding.Name == obj.GetName() && e.Reason == reason {
				if strings.Contains(e.Note, want) {
					return nil
				}
				notes = append(notes, e.Note)
			}
		}
		return fmt.Errorf("%s events: %q", reason, notes)
	})
}

// deleteServiceAndWait deletes a Service and waits for its LoadBalancer
// and data plane to go.
func deleteServiceAndWait(t *testing.T, l *lab.Lab, svc *corev1.Service, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	if err := l.Client.Delete(ctx, svc); err != nil {
		t.Fatal(err)
	}
	names := desired.NamesFor(lb)
	eventually(t, 2*time.Minute, "Service "+svc.Name+"'s LoadBalancer and data plane gone", func() error {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("LoadBalancer: %v", err)
		}
		ds := &appsv1.DaemonSet{}
		if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: names.DaemonSet}, ds); !apierrors.IsNotFound(err) {
			return fmt.Errorf("DaemonSet %s: %v", names.DaemonSet, err)
		}
		return nil
	})
}

// tenantServices: a tenant who may write Services and EndpointSlices in
// its namespace, and not LoadBalancers, gets a Service served (the
// operator writes the LoadBalancer), and cannot reach a node through an
// EndpointSlice it wrote by hand.
func tenantServices(t *testing.T, l *lab.Lab, ns string) {
	t.Helper()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "services", Namespace: ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
	}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "services", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "service-tenant"}}}
	createObject(t, l, role)
	createObject(t, l, binding)
	tenant := impersonate(t, l, "service-tenant")
	direct := &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: "direct", Namespace: ns}, Spec: website().Spec}
	direct.Spec.ClassName = servicesClass
	if err := tenant.Create(ctx, direct); !apierrors.IsForbidden(err) {
		t.Errorf("the tenant created a LoadBalancer: %v", err)
	}

	// A selector-less Service whose EndpointSlice the tenant writes.
	create := func(name, addr string, port int32) *corev1.Service {
		svc := echoService(name, "", servicelb.ClassPrefix+servicesClass)
		svc.Namespace, svc.Spec.Selector = ns, nil
		svc.Spec.Ports[0].TargetPort = intstr.FromInt32(port)
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(port)}},
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{addr}}},
		}
		for _, obj := range []client.Object{svc, slice} {
			if err := tenant.Create(ctx, obj); err != nil {
				t.Fatalf("the tenant creating %s: %v", obj.GetName(), err)
			}
			t.Cleanup(func() { _ = l.Client.Delete(ctx, obj) })
		}
		return svc
	}
	served := create("t-web", lab.BackendAddr(0), lab.BackendPort)
	kubelet := create("t-kubelet", lab.NodeAddr(1), 10250)

	eventually(t, 2*time.Minute, "the tenant's Service served", func() error {
		if err := tenant.Get(ctx, client.ObjectKeyFromObject(served), served); err != nil {
			return err
		}
		in := served.Status.LoadBalancer.Ingress
		if len(in) != 1 {
			return fmt.Errorf("ingress %+v", in)
		}
		body, err := l.NewClient(2*time.Second).Get(ctx, "http://"+in[0].IP+"/", "")
		if err != nil {
			return err
		}
		if lab.Backend(body) != lab.BackendName(0) {
			return fmt.Errorf("answered %q", body)
		}
		return nil
	})
	waitEvent(t, l, kubelet, controllers.EventSyncLoadBalancerFailed, lab.NodeAddr(1))
	cfg := &corev1.ConfigMap{}
	names := desired.NamesFor(&v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: kubelet.Name, Namespace: ns}})
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: names.HAProxyConfigMap}, cfg); err == nil {
		for _, v := range cfg.Data {
			if strings.Contains(v, lab.NodeAddr(1)+":10250") {
				t.Errorf("the node's kubelet port reached haproxy.cfg:\n%s", v)
			}
		}
	} else if !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// TestServiceControllerNeedsItsRBAC takes away, one at a time, each rule
// the manager holds only for Services (create, update and delete on
// LoadBalancers, patch on services/status), does what needs it, and sees
// the Service told why in the API server's words; with the rule back the
// Service is served. Together with TestServicesOnRealNodes, which runs
// under exactly these rules, it shows each is used and enough.
func TestServiceControllerNeedsItsRBAC(t *testing.T) {
	l := requireLab(t)
	createServicesClass(t, l, "services-rbac", "default")
	svc := echoService("svc-rbac", "none", servicelb.ClassPrefix+"services-rbac")
	key := client.ObjectKeyFromObject(svc)
	lb := &v1alpha1.LoadBalancer{}

	restore := withoutManagerRule(t, l, v1alpha1.GroupVersion.Group, "loadbalancers", "create")
	createObject(t, l, svc)
	waitEvent(t, l, svc, controllers.EventSyncLoadBalancerFailed, `cannot create resource "loadbalancers"`)
	restore()
	waitIngress(t, l, svc, "")
	if err := l.Client.Get(ctx, key, lb); err != nil {
		t.Fatal(err)
	}
	ip := svc.Status.LoadBalancer.Ingress[0].IP

	restore = withoutManagerRule(t, l, v1alpha1.GroupVersion.Group, "loadbalancers", "update")
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) { lb.Spec.Listeners[0].Port = 8081 })
	waitEvent(t, l, svc, controllers.EventSyncLoadBalancerFailed, `cannot update resource "loadbalancers"`)
	restore()
	eventually(t, time.Minute, "the edit put back", func() error {
		if err := l.Client.Get(ctx, key, lb); err != nil {
			return err
		}
		if p := lb.Spec.Listeners[0].Port; p != 80 {
			return fmt.Errorf("listener port %d", p)
		}
		return nil
	})

	restore = withoutManagerRule(t, l, "", "services/status", "patch")
	if err := l.Client.Get(ctx, key, svc); err != nil {
		t.Fatal(err)
	}
	cleared := svc.DeepCopy()
	cleared.Status.LoadBalancer.Ingress = nil
	if err := l.Client.Status().Patch(ctx, cleared, client.MergeFrom(svc)); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, l, svc, controllers.EventSyncLoadBalancerFailed, `cannot patch resource "services/status"`)
	restore()
	waitIngress(t, l, svc, ip)

	restore = withoutManagerRule(t, l, v1alpha1.GroupVersion.Group, "loadbalancers", "delete")
	if err := l.Client.Get(ctx, key, svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type, svc.Spec.LoadBalancerClass, svc.Spec.AllocateLoadBalancerNodePorts = corev1.ServiceTypeClusterIP, nil, nil
	if err := l.Client.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, l, svc, controllers.EventSyncLoadBalancerFailed, `cannot delete resource "loadbalancers"`)
	restore()
	eventually(t, time.Minute, "the LoadBalancer deleted", func() error {
		if err := l.Client.Get(ctx, key, &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("LoadBalancer: %v", err)
		}
		return nil
	})
}

// withoutManagerRule takes verb on resource away from the manager's
// ClusterRole and returns what puts it back (also run at cleanup).
func withoutManagerRule(t *testing.T, l *lab.Lab, group, resource, verb string) (restore func()) {
	t.Helper()
	role := &rbacv1.ClusterRole{}
	key := client.ObjectKey{Name: "hakeeper-manager"}
	if err := l.Client.Get(ctx, key, role); err != nil {
		t.Fatal(err)
	}
	original := slices.Clone(role.Rules)
	var rules []rbacv1.PolicyRule
	found := false
	for _, r := range role.Rules {
		if !slices.Contains(r.APIGroups, group) || !slices.Contains(r.Resources, resource) || !slices.Contains(r.Verbs, verb) {
			rules = append(rules, r)
			continue
		}
		found = true
		// The other resources keep the verb; this one keeps the others.
		if others := slices.DeleteFunc(slices.Clone(r.Resources), func(s string) bool { return s == resource }); len(others) > 0 {
			kept := r.DeepCopy()
			kept.Resources = others
			rules = append(rules, *kept)
		}
		if verbs := slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == verb }); len(verbs) > 0 {
			cut := r.DeepCopy()
			cut.Resources, cut.Verbs = []string{resource}, verbs
			rules = append(rules, *cut)
		}
	}
	if !found {
		t.Fatalf("the manager's ClusterRole has no rule granting %s on %s", verb, resource)
	}
	role.Rules = rules
	if err := l.Client.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		current := &rbacv1.ClusterRole{}
		if err := l.Client.Get(ctx, key, current); err != nil {
			t.Error(err)
			return
		}
		current.Rules = original
		if err := l.Client.Update(ctx, current); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restore)
	return restore
}
