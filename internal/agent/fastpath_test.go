package agent

import (
	"net/netip"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/render"
)

// inputFor is a small LoadBalancer: a static server and a Service's
// endpoints in four slots.
func inputFor(endpoints []render.Endpoint, change func(*v1alpha1.LoadBalancerSpec)) render.Input {
	spec := v1alpha1.LoadBalancerSpec{
		Listeners: []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
		Backends: []v1alpha1.Backend{{
			Name:       "web",
			Servers:    []v1alpha1.Server{{Name: "vm1", Address: "198.18.2.1", Port: 8080, Weight: ptr.To(int32(100))}},
			ServiceRef: &v1alpha1.ServiceReference{Name: "web", Port: intstr.FromString("http"), ServerSlots: ptr.To(int32(4))},
		}},
	}
	if change != nil {
		change(&spec)
	}
	in := render.Input{Name: "web", Namespace: "ns", Spec: spec, VirtualIPs: []netip.Prefix{netip.MustParsePrefix("198.18.0.100/24")},
		Nodes:     []render.Node{{Name: "n1", Address: "198.18.0.11", Interface: "eth0", Priority: 100}},
		Endpoints: map[string][]render.Endpoint{"web": endpoints}, VirtualRouterID: 1}
	return in
}

// TestServersOnlyChange: an endpoint joining, leaving or moving, and a
// static server's weight, leave every checked token in place; anything
// else, or server lines that disagree with the runtime server set, needs
// haproxy -c again.
func TestServersOnlyChange(t *testing.T) {
	baseCfg, _, err := render.HAProxyConfigAndServers(inputFor([]render.Endpoint{{Address: "198.18.2.11", Port: 8080}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	base := string(baseCfg)
	for _, tc := range []struct {
		name      string
		endpoints []render.Endpoint
		change    func(*v1alpha1.LoadBalancerSpec)
		want      bool
	}{
		{"an endpoint joins", []render.Endpoint{{Address: "198.18.2.11", Port: 8080}, {Address: "198.18.2.12", Port: 8080}}, nil, true},
		{"the endpoint moves", []render.Endpoint{{Address: "198.18.2.13", Port: 9090}}, nil, true},
		{"the endpoint leaves", nil, nil, true},
		{"a static server's weight", []render.Endpoint{{Address: "198.18.2.11", Port: 8080}},
			func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Servers[0].Weight = ptr.To(int32(7)) }, true},
		{"a timeout", []render.Endpoint{{Address: "198.18.2.11", Port: 8080}},
			func(s *v1alpha1.LoadBalancerSpec) { s.HAProxy.Timeouts.ClientSeconds = ptr.To(int32(7)) }, false},
		{"a listener", []render.Endpoint{{Address: "198.18.2.11", Port: 8080}},
			func(s *v1alpha1.LoadBalancerSpec) {
				s.Listeners = append(s.Listeners, v1alpha1.Listener{Name: "alt", Port: 81, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"})
			}, false},
		{"nothing", []render.Endpoint{{Address: "198.18.2.11", Port: 8080}}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, servers, err := render.HAProxyConfigAndServers(inputFor(tc.endpoints, tc.change))
			if err != nil {
				t.Fatal(err)
			}
			if got := serversOnlyChange(base, string(cfg), servers); got != tc.want {
				t.Errorf("serversOnlyChange = %v, want %v", got, tc.want)
			}
			if !tc.want {
				return
			}
			// The same lines, but the server set says otherwise: a
			// ConfigMap whose config and server data disagree is checked.
			for name, list := range servers.Backends {
				for i := range list {
					list[i].Weight++
				}
				servers.Backends[name] = list
			}
			if serversOnlyChange(base, string(cfg), servers) {
				t.Error("server lines that disagree with the server set passed")
			}
			if serversOnlyChange(base, strings.Replace(string(cfg), "weight", "weight 1 weight", 1), servers) {
				t.Error("an extra token passed")
			}
		})
	}
}
