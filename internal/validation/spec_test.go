package validation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

func ptr[T any](v T) *T { return &v }

// validSpec is a small spec that passes; each case breaks one thing.
func validSpec() v1alpha1.LoadBalancerSpec {
	return v1alpha1.LoadBalancerSpec{
		VirtualIPs: []string{"198.18.0.100"},
		Listeners: []v1alpha1.Listener{
			{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web",
				Routes: []v1alpha1.Route{{PathPrefix: "/api", Backend: "api"}}},
			{Name: "pg", Port: 5432, Protocol: v1alpha1.ProtocolTCP, DefaultBackend: "pg"},
		},
		Backends: []v1alpha1.Backend{
			{Name: "web", StickyCookie: &v1alpha1.StickyCookie{Name: "SRV"},
				HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Path: "/healthz"},
				Servers:     []v1alpha1.Server{{Name: "vm1", Address: "198.18.0.21", Port: 8080}}},
			{Name: "api", ServiceRef: &v1alpha1.ServiceReference{Name: "api", Port: intstr.FromString("http")}},
			{Name: "pg", Servers: []v1alpha1.Server{{Name: "db", Address: "db.example.internal", Port: 5432}}},
		},
	}
}

func TestSpec(t *testing.T) {
	tests := []struct {
		name       string
		mutate     func(*v1alpha1.LoadBalancerSpec)
		wantErrors []string // each must appear in the aggregated message
	}{
		{name: "valid", mutate: func(*v1alpha1.LoadBalancerSpec) {}},
		{name: "bad IP", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"198.18.0.300"} },
			wantErrors: []string{"spec.virtualIPs[0]", "198.18.0.300"}},
		{name: "VIP with a prefix", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"198.18.0.100/24"} },
			wantErrors: []string{"spec.virtualIPs[0]", "must be an IP address"}},
		{name: "VIP every address", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"0.0.0.0"} },
			wantErrors: []string{"spec.virtualIPs[0]", "unicast"}},
		{name: "VIP loopback", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"127.0.0.1"} },
			wantErrors: []string{"spec.virtualIPs[0]", "unicast"}},
		{name: "VIP metadata", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"169.254.169.254"} },
			wantErrors: []string{"spec.virtualIPs[0]", "unicast"}},
		{name: "VIP VRRP multicast", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"224.0.0.18"} },
			wantErrors: []string{"spec.virtualIPs[0]", "unicast"}},
		{name: "VIP not canonical", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VirtualIPs = []string{"2001:DB8::1"} },
			wantErrors: []string{"spec.virtualIPs[0]", "canonical"}},
		{name: "duplicate VIP", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.VirtualIPs = []string{"198.18.0.100", "198.18.0.100"}
		}, wantErrors: []string{"spec.virtualIPs[1]: Duplicate"}},
		{name: "families with VIPs", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol} },
			wantErrors: []string{"spec.ipFamilies", "leave it out"}},
		{name: "server on loopback", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Servers[0].Address = "127.0.0.1" },
			wantErrors: []string{"spec.backends[0].servers[0].address", "unicast"}},
		{name: "server localhost", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Servers[0].Address = "localhost" },
			wantErrors: []string{"spec.backends[0].servers[0].address", "localhost"}},
		{name: "router ID 0", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.VRRP.VirtualRouterID = ptr(int32(0)) },
			wantErrors: []string{"spec.vrrp.virtualRouterID", "between 1 and 255"}},
		{name: "priority 255", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.VRRP.Priorities = []v1alpha1.NodePriority{{Node: "a", Priority: 255}}
		}, wantErrors: []string{"spec.vrrp.priorities[0].priority"}},
		{name: "advert not a multiple of 10", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.VRRP.AdvertIntervalMilliseconds = ptr(int32(105))
		}, wantErrors: []string{"spec.vrrp.advertIntervalMilliseconds", "multiple of 10"}},
		{name: "VRRPv2 sub-second advert", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.VRRP.Version, s.VRRP.AdvertIntervalMilliseconds = ptr(int32(2)), ptr(int32(500))
		}, wantErrors: []string{"spec.vrrp.advertIntervalMilliseconds", "version 2"}},
		{name: "preempt delay without preemption", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.VRRP.Preemption, s.VRRP.PreemptDelaySeconds = v1alpha1.PreemptionDisabled, ptr(int32(5))
		}, wantErrors: []string{"spec.vrrp.preemptDelaySeconds"}},
		{name: "route to missing backend", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[0].Routes[0].Backend = "nope" },
			wantErrors: []string{"spec.listeners[0].routes[0].backend: Not found", "nope"}},
		{name: "default backend missing", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[1].DefaultBackend = "gone" },
			wantErrors: []string{"spec.listeners[1].defaultBackend: Not found"}},
		{name: "server name with a newline", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.Backends[0].Servers[0].Name = "vm1\n    option httpclose"
		}, wantErrors: []string{"spec.backends[0].servers[0].name"}},
		{name: "duplicate listener port", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[1].Port = 80 },
			wantErrors: []string{"spec.listeners[1].port: Duplicate"}},
		{name: "duplicate listener name", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[1].Name = "http" },
			wantErrors: []string{"spec.listeners[1].name: Duplicate"}},
		{name: "routes on TCP", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.Listeners[1].Routes = []v1alpha1.Route{{PathPrefix: "/", Backend: "pg"}}
		}, wantErrors: []string{"spec.listeners[1].routes", "need protocol HTTP"}},
		{name: "backend without servers", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[2].Servers = nil },
			wantErrors: []string{"spec.backends[2].servers", "servers or a serviceRef"}},
		{name: "sticky cookie on TCP backend", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.Backends[2].StickyCookie = &v1alpha1.StickyCookie{Name: "X"}
		}, wantErrors: []string{"spec.backends[2].stickyCookie"}},
		{name: "backend used by HTTP and TCP", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[1].DefaultBackend = "web" },
			wantErrors: []string{"spec.backends[0].name", "both HTTP and TCP"}},
		{name: "header balance without header", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Balance = v1alpha1.BalanceHeader },
			wantErrors: []string{"spec.backends[0].hashHeader"}},
		{name: "unknown balance", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Balance = "Random" },
			wantErrors: []string{"spec.backends[0].balance: Unsupported value"}},
		{name: "check timeout above interval", mutate: func(s *v1alpha1.LoadBalancerSpec) {
			s.Backends[0].HealthCheck.IntervalMilliseconds, s.Backends[0].HealthCheck.TimeoutMilliseconds = ptr(int32(500)), ptr(int32(600))
		}, wantErrors: []string{"spec.backends[0].healthCheck.timeoutMilliseconds"}},
		{name: "TCP check with a path", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].HealthCheck.Type = v1alpha1.HealthCheckTCP },
			wantErrors: []string{"spec.backends[0].healthCheck", "need type HTTP"}},
		{name: "path with a space", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[0].Routes[0].PathPrefix = "/a b" },
			wantErrors: []string{"spec.listeners[0].routes[0].pathPrefix"}},
		{name: "host with a quote", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Listeners[0].Routes[0].Host = `a".example.com` },
			wantErrors: []string{"spec.listeners[0].routes[0].host"}},
		{name: "address with a zone", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Servers[0].Address = "fe80::1%eth0" },
			wantErrors: []string{"spec.backends[0].servers[0].address"}},
		{name: "weight above 256", mutate: func(s *v1alpha1.LoadBalancerSpec) { s.Backends[0].Servers[0].Weight = ptr(int32(1000)) },
			wantErrors: []string{"spec.backends[0].servers[0].weight"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := validSpec()
			tt.mutate(&spec)
			errs := Spec(&spec)
			if len(tt.wantErrors) == 0 {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("no error, want %q", tt.wantErrors)
			}
			msg := errs.ToAggregate().Error()
			for _, want := range tt.wantErrors {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}
