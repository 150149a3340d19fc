package servicelb

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

func TestClassName(t *testing.T) {
	lb := func(class *string) *corev1.Service {
		return &corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: class}}
	}
	for _, tc := range []struct {
		svc          *corev1.Service
		defaultClass string
		want         string
	}{
		{lb(ptr.To("hakeeper.io/edge")), "", "edge"},
		{lb(ptr.To("metallb.io/l2")), "edge", ""},
		{lb(nil), "", ""},
		{lb(nil), "edge", "edge"},
		{&corev1.Service{Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP}}, "edge", ""},
	} {
		if got := ClassName(tc.svc, tc.defaultClass); got != tc.want {
			t.Errorf("%v with default %q: got %q, want %q", tc.svc.Spec.LoadBalancerClass, tc.defaultClass, got, tc.want)
		}
	}
}

func TestTranslate(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop"}, Spec: corev1.ServiceSpec{
		Type:            corev1.ServiceTypeLoadBalancer,
		SessionAffinity: corev1.ServiceAffinityClientIP,
		IPFamilies:      []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol},
		IPFamilyPolicy:  ptr.To(corev1.IPFamilyPolicyRequireDualStack),
		Ports: []corev1.ServicePort{
			{Name: "https", Port: 443}, {Port: 8080, Protocol: corev1.ProtocolTCP}, {Name: "quic", Port: 443, Protocol: corev1.ProtocolUDP},
		},
		ExternalTrafficPolicy:    corev1.ServiceExternalTrafficPolicyLocal,
		LoadBalancerSourceRanges: []string{"203.0.113.0/24"},
	}}
	tr, err := Translate(svc, "edge")
	if err != nil {
		t.Fatal(err)
	}
	s := tr.Spec
	if s.ClassName != "edge" || len(s.Listeners) != 2 || s.Listeners[0].Name != "https" || s.Listeners[1].Name != "tcp-8080" ||
		s.Backends[1].ServiceRef.Port.IntValue() != 8080 || s.Backends[0].Balance != v1alpha1.BalanceSource {
		t.Errorf("spec %+v", s)
	}
	for _, l := range s.Listeners {
		if len(l.AllowedSourceRanges) != 1 || l.AllowedSourceRanges[0] != "203.0.113.0/24" {
			t.Errorf("listener %s: allowedSourceRanges %v", l.Name, l.AllowedSourceRanges)
		}
	}
	if len(s.IPFamilies) != 2 || len(s.VirtualIPs) != 0 {
		t.Errorf("families %v, addresses %v: want both families allocated", s.IPFamilies, s.VirtualIPs)
	}
	if len(tr.Unserved) != 1 || tr.Unserved[0].Protocol != corev1.ProtocolUDP || len(tr.Warnings) != 1 || !strings.Contains(tr.Warnings[0], "externalTrafficPolicy") {
		t.Errorf("unserved %v, warnings %v", tr.Unserved, tr.Warnings)
	}

	for _, b := range s.Backends {
		if b.HealthCheck == nil || b.HealthCheck.Type != v1alpha1.HealthCheckTCP || b.SendProxyProtocol != "" {
			t.Errorf("backend %s: health check %+v, PROXY %q: want each pod checked by a connection, no PROXY header", b.Name, b.HealthCheck, b.SendProxyProtocol)
		}
	}

	// The annotation passes the client's address to the pods: Local is
	// honoured, so no warning.
	svc.Annotations = map[string]string{AnnotationProxyProtocol: "v2"}
	if tr, err = Translate(svc, "edge"); err != nil || len(tr.Warnings) != 0 || tr.Spec.Backends[0].SendProxyProtocol != v1alpha1.ProxyProtocolV2 {
		t.Errorf("proxy-protocol v2: %v, warnings %v, backend %+v", err, tr.Warnings, tr.Spec.Backends[0])
	}
	svc.Annotations = map[string]string{AnnotationProxyProtocol: "v3"}
	if _, err = Translate(svc, "edge"); err == nil || !strings.Contains(err.Error(), AnnotationProxyProtocol) {
		t.Errorf("proxy-protocol v3: %v, want refused naming the annotation", err)
	}

	svc.Annotations = map[string]string{AnnotationLoadBalancerIPs: "198.18.0.100, 2001:db8::100"}
	if tr, err = Translate(svc, "edge"); err != nil || len(tr.Spec.VirtualIPs) != 2 || tr.Spec.IPFamilies != nil {
		t.Errorf("requested: %v %v %v", tr.Spec.VirtualIPs, tr.Spec.IPFamilies, err)
	}
	svc.Spec.LoadBalancerIP = "198.18.0.101"
	if _, err = Translate(svc, "edge"); err == nil || !strings.Contains(err.Error(), "both") {
		t.Errorf("annotation and loadBalancerIP: %v", err)
	}
	svc.Annotations, svc.Spec.LoadBalancerIP = nil, ""
	svc.Spec.Ports = []corev1.ServicePort{{Port: 53, Protocol: corev1.ProtocolUDP}}
	if _, err = Translate(svc, "edge"); err == nil || !strings.Contains(err.Error(), "no TCP port") {
		t.Errorf("UDP only: %v", err)
	}
}

func TestIngress(t *testing.T) {
	lb := &v1alpha1.LoadBalancer{Status: v1alpha1.LoadBalancerStatus{VirtualIPs: []string{"198.18.0.100/24"}}}
	ports := []corev1.ServicePort{{Port: 53}, {Port: 53, Protocol: corev1.ProtocolUDP}}
	unserved := []PortError{{Port: 53, Protocol: corev1.ProtocolUDP}}
	if in := Ingress(lb, unserved, ports); in != nil {
		t.Errorf("published before a node holds the address: %+v", in)
	}
	lb.Status.ActiveNode = "a"
	in := Ingress(lb, unserved, ports)
	if len(in) != 1 || in[0].IP != "198.18.0.100" || *in[0].IPMode != corev1.LoadBalancerIPModeProxy ||
		in[0].Ports[0].Error != nil || in[0].Ports[1].Error == nil || *in[0].Ports[1].Error != ErrorProtocolNotProxied {
		t.Errorf("ingress %+v", in)
	}
}
