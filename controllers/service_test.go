package controllers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/controllers"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/servicelb"
)

// lbService is a Service of type LoadBalancer of the given class, with
// its TCP ports (name=port) and a UDP port 53.
func lbService(ns, name, class string) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.ServiceSpec{
		Type:     corev1.ServiceTypeLoadBalancer,
		Selector: map[string]string{"app": name},
		Ports: []corev1.ServicePort{
			{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(5353)},
			{Name: "dns-udp", Port: 53, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(5353)},
		},
	}}
	if class != "" {
		svc.Spec.LoadBalancerClass = ptr.To(class)
	}
	return svc
}

func createService(t *testing.T, svc *corev1.Service) *corev1.Service {
	t.Helper()
	if err := k8s.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(ctx, svc) })
	return svc
}

// TestServiceTypeLoadBalancer: a Service of class hakeeper.io/<class> gets
// a LoadBalancer of its name that it controls, with a TCP listener per TCP
// port fed by that port's endpoints; once a node holds the address the
// Service shows it with ipMode Proxy, and its UDP port's error. Edits to
// the LoadBalancer are put back; Services of another class or none, a
// LoadBalancer the Service does not own, and an address outside the pools
// are left alone with an event; changing the type away deletes the
// LoadBalancer and clears the address.
func TestServiceTypeLoadBalancer(t *testing.T) {
	ns := namespace(t, "svclb")
	node(t, "sv-1", "198.18.24.1", map[string]string{"pool": "svclb"})
	class := testClass("svclb", "198.18.24.96/27")
	class.Spec.DataPlane.NodeSelector["pool"] = "svclb"
	createClass(t, class)

	svc := createService(t, lbService(ns, "dns", "hakeeper.io/svclb"))
	endpointSlice(t, ns, "dns-v4", "dns", "dns-tcp", 5353, discoveryv1.AddressTypeIPv4, "198.18.12.21", "198.18.12.22")
	key := client.ObjectKey{Namespace: ns, Name: "dns"}
	lb := &v1alpha1.LoadBalancer{}
	eventually(t, "the Service's LoadBalancer", func() error {
		if err := k8s.Get(ctx, key, lb); err != nil {
			return err
		}
		if !metav1.IsControlledBy(lb, svc) {
			return fmt.Errorf("not controlled by the Service: %v", lb.OwnerReferences)
		}
		l, b := lb.Spec.Listeners, lb.Spec.Backends
		if lb.Spec.ClassName != "svclb" || len(l) != 1 || l[0].Name != "dns-tcp" || l[0].Port != 53 || l[0].Protocol != v1alpha1.ProtocolTCP ||
			len(b) != 1 || b[0].ServiceRef == nil || b[0].ServiceRef.Name != "dns" || b[0].ServiceRef.Port.IntValue() != 53 {
			return fmt.Errorf("spec %+v", lb.Spec)
		}
		return nil
	})
	eventually(t, "the endpoints in haproxy.cfg", func() error {
		cfg := waitApplied(t, lb)
		if !strings.Contains(cfg, "198.18.12.21:5353") || !strings.Contains(cfg, "198.18.12.22:5353") {
			return fmt.Errorf("haproxy.cfg lacks the pods:\n%s", cfg)
		}
		return nil
	})

	// A node holds the address: the Service shows it.
	holdVIP(t, lb, "sv-1")
	vip := strings.Split(getLB(t, lb).Status.VirtualIPs[0], "/")[0]
	eventually(t, "EXTERNAL-IP with ipMode Proxy", func() error {
		if err := k8s.Get(ctx, key, svc); err != nil {
			return err
		}
		in := svc.Status.LoadBalancer.Ingress
		if len(in) != 1 || in[0].IP != vip || in[0].IPMode == nil || *in[0].IPMode != corev1.LoadBalancerIPModeProxy || len(in[0].Ports) != 2 {
			return fmt.Errorf("ingress %+v", in)
		}
		for _, p := range in[0].Ports {
			if (p.Protocol == corev1.ProtocolUDP) != (p.Error != nil && *p.Error == servicelb.ErrorProtocolNotProxied) {
				return fmt.Errorf("port %d/%s error %v", p.Port, p.Protocol, p.Error)
			}
		}
		c := meta.FindStatusCondition(svc.Status.Conditions, controllers.ConditionLoadBalancerPortsError)
		if c == nil || c.Status != metav1.ConditionTrue || !strings.Contains(c.Message, "53/UDP is not served") {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	waitServiceEvent(t, svc, controllers.EventIPAllocated, vip)

	// The Service is the source of truth.
	patch := client.MergeFrom(lb.DeepCopy())
	lb.Spec.Listeners[0].Port = 5300
	if err := k8s.Patch(ctx, lb, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the edit put back", func() error {
		if err := k8s.Get(ctx, key, lb); err != nil {
			return err
		}
		if p := lb.Spec.Listeners[0].Port; p != 53 {
			return fmt.Errorf("listener port %d", p)
		}
		return nil
	})

	// Left alone: another implementation's class, no class (no default
	// named), a LoadBalancer the Service does not own, an address outside
	// the pools.
	createService(t, lbService(ns, "metallb", "metallb.io/l2"))
	createService(t, lbService(ns, "classless", ""))
	squatter := smallLB(ns, "svclb", "", "svclb")
	squatter.Name = "taken"
	createLB(t, squatter)
	taken := createService(t, lbService(ns, "taken", "hakeeper.io/svclb"))
	waitServiceEvent(t, taken, controllers.EventSyncLoadBalancerFailed, "LoadBalancer svclb/taken exists and is not this Service's")
	outside := lbService(ns, "outside", "hakeeper.io/svclb")
	outside.Annotations = map[string]string{servicelb.AnnotationLoadBalancerIPs: "198.18.25.100"}
	createService(t, outside)
	waitServiceEvent(t, outside, controllers.EventAllocationFailed, "198.18.25.100 is in none of LoadBalancerClass svclb's pools")
	// Both families required, and the class has no IPv6 pool.
	dual := lbService(ns, "dual", "hakeeper.io/svclb")
	dual.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
	dual.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	createService(t, dual)
	waitServiceEvent(t, dual, controllers.EventAllocationFailed, "LoadBalancerClass svclb has no IPv6 pool")
	time.Sleep(time.Second)
	for _, name := range []string{"metallb", "classless", "outside", "dual"} {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
			t.Errorf("LoadBalancer %s written: %v", name, err)
		}
	}
	if got := getLB(t, squatter); len(got.OwnerReferences) != 0 || got.Spec.Listeners[0].Name != "http" {
		t.Errorf("the LoadBalancer the Service does not own was changed: %+v", got.ObjectMeta.OwnerReferences)
	}

	// Type changed away: the LoadBalancer goes, the address is cleared.
	if err := k8s.Get(ctx, key, svc); err != nil {
		t.Fatal(err)
	}
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.LoadBalancerClass = nil
	if err := k8s.Update(ctx, svc); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the LoadBalancer deleted and the address cleared", func() error {
		if err := k8s.Get(ctx, key, &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("LoadBalancer: %v", err)
		}
		if err := k8s.Get(ctx, key, svc); err != nil {
			return err
		}
		if len(svc.Status.LoadBalancer.Ingress) > 0 {
			return fmt.Errorf("ingress %+v", svc.Status.LoadBalancer.Ingress)
		}
		return nil
	})
}

// holdVIP reports node as the master holding the LoadBalancer's virtual
// IPs, as its agent would.
func holdVIP(t *testing.T, lb *v1alpha1.LoadBalancer, node string) {
	t.Helper()
	names := desired.NamesFor(lb)
	var hash string
	var vips []string
	eventually(t, "configs of "+node, func() error {
		k := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).Data[node+".conf"]
		got := getLB(t, lb)
		if k == "" || len(got.Status.VirtualIPs) == 0 {
			return fmt.Errorf("none yet")
		}
		hash = contract.NodeConfigHash([]byte(configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]), []byte(k))
		vips = nil
		for _, v := range got.Status.VirtualIPs {
			vips = append(vips, strings.Split(v, "/")[0])
		}
		return nil
	})
	reportNode(t, lb, node, contract.NodeReport{Interface: "eth0", Role: v1alpha1.VRRPRoleMaster, ConfigHash: hash, Healthy: true,
		HoldsObserved: true, Holds: vips})
	eventually(t, node+" active", func() error {
		if got := getLB(t, lb).Status.ActiveNode; got != node {
			return fmt.Errorf("active node %q", got)
		}
		return nil
	})
}

// waitServiceEvent waits for an event about the Service whose reason is
// reason and whose note holds want.
func waitServiceEvent(t *testing.T, svc *corev1.Service, reason, want string) {
	t.Helper()
	eventually(t, fmt.Sprintf("event %s on Service %s", reason, svc.Name), func() error {
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list, client.InNamespace(svc.Namespace)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Kind == "Service" && e.Regarding.Name == svc.Name && e.Reason == reason && strings.Contains(e.Note, want) {
				return nil
			}
		}
		return fmt.Errorf("none among %d", len(list.Items))
	})
}

// TestServiceWaitsForItsClassAndNamespace: a Service refused because its
// class does not exist yet, or does not select its namespace, is served as
// soon as the class is created or the namespace labelled, with no edit to
// the Service (the controller watches classes and namespaces; without
// that, it waited for the Service's next change).
func TestServiceWaitsForItsClassAndNamespace(t *testing.T) {
	label := func(ns string) {
		t.Helper()
		nsObj := &corev1.Namespace{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
			t.Fatal(err)
		}
		nsObj.Labels["hakeeper.io/svcwait"] = "yes"
		if err := k8s.Update(ctx, nsObj); err != nil {
			t.Fatal(err)
		}
	}
	served := func(what string, key client.ObjectKey) {
		t.Helper()
		eventually(t, what, func() error { return k8s.Get(ctx, key, &v1alpha1.LoadBalancer{}) })
	}
	node(t, "sw-1", "198.18.26.1", map[string]string{"pool": "svcwait"})
	early := namespace(t, "svcwait-early")
	label(early)
	svc := createService(t, lbService(early, "early", "hakeeper.io/svcwait"))
	waitServiceEvent(t, svc, controllers.EventSyncLoadBalancerFailed, "LoadBalancerClass svcwait not found")

	// A Service refused first because its class does not exist, then
	// because the class does not select its namespace: two events, each
	// with its own note (not one series of the first's).
	late := namespace(t, "svcwait-late")
	lateSvc := createService(t, lbService(late, "late", "hakeeper.io/svcwait"))
	waitServiceEvent(t, lateSvc, controllers.EventSyncLoadBalancerFailed, "LoadBalancerClass svcwait not found")

	class := testClass("svcwait", "198.18.26.96/27")
	class.Spec.DataPlane.NodeSelector["pool"] = "svcwait"
	class.Spec.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"hakeeper.io/svcwait": "yes"}}
	createClass(t, class)
	// Gone before the class's cleanup, which waits for its LoadBalancers
	// to go (a Service left would write its own again).
	first := svc
	t.Cleanup(func() { _ = k8s.Delete(ctx, first); _ = k8s.Delete(ctx, lateSvc) })
	served("the LoadBalancer of a Service created before its class", client.ObjectKey{Namespace: early, Name: "early"})

	waitServiceEvent(t, lateSvc, controllers.EventSyncLoadBalancerFailed, "does not allow namespace "+late)
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: late, Name: "late"}, &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a LoadBalancer was written in a namespace the class does not select: %v", err)
	}
	label(late)
	served("the LoadBalancer of a Service once its namespace is labelled", client.ObjectKey{Namespace: late, Name: "late"})
}

// TestServiceLeavesADeletedClass: once its class is being deleted (it
// waits for its LoadBalancers: make undeploy deletes the classes, then the
// LoadBalancers), a Service's deleted LoadBalancer is not written again,
// or the class would wait forever; the Service is told why.
func TestServiceLeavesADeletedClass(t *testing.T) {
	node(t, "sd-1", "198.18.27.1", map[string]string{"pool": "svcdel"})
	ns := namespace(t, "svcdel")
	class := testClass("svcdel", "198.18.27.96/27")
	class.Spec.DataPlane.NodeSelector["pool"] = "svcdel"
	createClass(t, class)
	svc := createService(t, lbService(ns, "web", "hakeeper.io/svcdel"))
	key := client.ObjectKey{Namespace: ns, Name: "web"}
	eventually(t, "the Service's LoadBalancer", func() error { return k8s.Get(ctx, key, &v1alpha1.LoadBalancer{}) })

	if err := k8s.Delete(ctx, class); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the class marked for deletion", func() error {
		got := &v1alpha1.LoadBalancerClass{}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(class), got); err != nil || got.DeletionTimestamp == nil {
			return fmt.Errorf("class %v, deleting %v", err, got.DeletionTimestamp)
		}
		return nil
	})
	waitServiceEvent(t, svc, controllers.EventSyncLoadBalancerFailed, "LoadBalancerClass svcdel is being deleted")
	if err := k8s.Delete(ctx, &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the class gone with its last LoadBalancer", func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(class), &v1alpha1.LoadBalancerClass{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("class still there (%v)", err)
		}
		return nil
	})
	if err := k8s.Get(ctx, key, &v1alpha1.LoadBalancer{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Service's LoadBalancer was written again: %v", err)
	}
}
