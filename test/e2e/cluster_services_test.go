package e2e

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/controllers"
	"github.com/hakeeper/hakeeper/internal/lab"
	"github.com/hakeeper/hakeeper/internal/servicelb"
)

// TestServiceServedOnRealNodes: a Service of type LoadBalancer of class
// hakeeper.io/<class> gets an address from the class's pool, held by a
// real keepalived on a lab node and published with ipMode Proxy once
// held; requests to it reach every endpoint through HAProxy; its UDP port
// is reported, not served. The endpoints are the lab's backends, written
// as a selector-less Service's EndpointSlice (the lab runs no pod
// network).
func TestServiceServedOnRealNodes(t *testing.T) {
	l := requireLab(t)
	// The lab's class, capping connections below the sandbox's file limit
	// (a Service sets none, and HAProxy's default needs twice the limit).
	labClass := &v1alpha1.LoadBalancerClass{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: lab.ClassName}, labClass); err != nil {
		t.Fatal(err)
	}
	class := &v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: "services"}, Spec: *labClass.Spec.DeepCopy()}
	class.Spec.Limits.MaxConnections = ptr.To(int32(4000))
	if err := l.Client.Create(ctx, class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, class) })

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "svc-web", Namespace: "default"}, Spec: corev1.ServiceSpec{
		Type:              corev1.ServiceTypeLoadBalancer,
		LoadBalancerClass: ptr.To(servicelb.ClassPrefix + class.Name),
		Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(lab.BackendPort)},
			{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
		},
	}}
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "svc-web", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "svc-web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Port: ptr.To(int32(lab.BackendPort))}},
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{lab.BackendAddr(0)}}, {Addresses: []string{lab.BackendAddr(1)}}},
	}
	for _, obj := range []client.Object{svc, slice} {
		if err := l.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Client.Delete(ctx, obj) })
	}

	var ip string
	eventually(t, 120*time.Second, "EXTERNAL-IP published with ipMode Proxy", func() error {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
			return err
		}
		in := svc.Status.LoadBalancer.Ingress
		if len(in) != 1 || in[0].IPMode == nil || *in[0].IPMode != corev1.LoadBalancerIPModeProxy {
			return fmt.Errorf("ingress %+v", in)
		}
		ip = in[0].IP
		return nil
	})
	pool := netip.MustParsePrefix(lab.Prefix + "96/27")
	if !pool.Contains(netip.MustParseAddr(ip)) {
		t.Errorf("EXTERNAL-IP %s is not from the class's pool %s", ip, pool)
	}
	if c := meta.FindStatusCondition(svc.Status.Conditions, controllers.ConditionLoadBalancerPortsError); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("UDP port not reported: %+v", svc.Status.Conditions)
	}
	holders := 0
	for i := range 3 {
		if l.HoldsVIP(lab.NodeName(i), ip) {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("%s is held by %d nodes, want 1", ip, holders)
	}

	c := l.NewClient(2 * time.Second)
	seen := map[string]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		body, err := c.Get(ctx, "http://"+ip+"/", "")
		if err != nil {
			t.Fatalf("through the Service's address: %v", err)
		}
		seen[lab.Backend(body)] = true
	}
	if !seen[lab.BackendName(0)] || !seen[lab.BackendName(1)] {
		t.Errorf("requests through %s reached %v, want both endpoints", ip, seen)
	}
	t.Logf("Service svc-web: EXTERNAL-IP %s (ipMode Proxy), served by %v", ip, seen)
}
