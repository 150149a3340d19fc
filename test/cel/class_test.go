package cel

import (
	"strings"
	"testing"
)

const classBase = `apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancerClass
metadata: {name: cel}
spec:
  virtualIPPools:
  - {name: v4, cidr: 198.18.0.96/27, prefixLength: 24}
  - {name: v6, cidr: "2001:db8::100/120", prefixLength: 64}
  namespaceSelector: {matchLabels: {tier: web}}
  dataPlane:
    nodeSelector: {hakeeper.io/edge: "true"}
    tolerations: [{key: edge, operator: Exists, effect: NoSchedule}]
    interface: eth0
  vrrp: {advertIntervalMilliseconds: 100, mode: Unicast, multicastGroups: {ipv4: 239.255.18.0/24, ipv6: "ff02::18:0/120"}}
  backends: {staticServers: IPAddresses, allowedCIDRs: [198.18.0.0/16]}
  limits: {maxServersPerBackend: 64, maxServerSlots: 32, minHealthCheckIntervalMilliseconds: 1000}
`

// TestClassSchema checks the LoadBalancerClass CRD's rules on the API
// server: pools must be unicast networks the subnet contains.
func TestClassSchema(t *testing.T) {
	tests := []struct {
		name, from, to, wantAPI string
	}{
		{name: "valid"},
		{name: "pool without prefixLength", from: "cidr: 198.18.0.96/27, prefixLength: 24}", to: "cidr: 198.18.0.96/27}"},
		{name: "no pool", from: "  virtualIPPools:\n  - {name: v4, cidr: 198.18.0.96/27, prefixLength: 24}\n  - {name: v6, cidr: \"2001:db8::100/120\", prefixLength: 64}\n", to: "  virtualIPPools: []\n", wantAPI: "spec.virtualIPPools"},
		{name: "host bits set", from: "198.18.0.96/27", to: "198.18.0.97/27", wantAPI: "spec.virtualIPPools[0].cidr"},
		{name: "not a network", from: "198.18.0.96/27", to: "198.18.0.96", wantAPI: "spec.virtualIPPools[0].cidr"},
		{name: "every address", from: "198.18.0.96/27", to: "0.0.0.0/0", wantAPI: "spec.virtualIPPools[0].cidr"},
		{name: "loopback pool", from: "198.18.0.96/27", to: "127.0.0.0/8", wantAPI: "spec.virtualIPPools[0].cidr"},
		{name: "link-local pool", from: "198.18.0.96/27", to: "169.254.0.0/16", wantAPI: "spec.virtualIPPools[0].cidr"},
		{name: "multicast pool", from: "198.18.0.96/27", to: "224.0.0.0/24", wantAPI: "spec.virtualIPPools[0].cidr"},
		{name: "IPv6 loopback pool", from: `"2001:db8::100/120"`, to: `"::1/128"`, wantAPI: "spec.virtualIPPools[1].cidr"},
		{name: "subnet smaller than the pool", from: "prefixLength: 24}", to: "prefixLength: 28}", wantAPI: "spec.virtualIPPools[0].prefixLength"},
		{name: "IPv4 prefix of 64", from: "cidr: 198.18.0.96/27, prefixLength: 24}", to: "cidr: 198.18.0.96/27, prefixLength: 64}", wantAPI: "spec.virtualIPPools[0].prefixLength"},
		{name: "duplicate pool name", from: "{name: v6,", to: "{name: v4,", wantAPI: "Duplicate value"},
		{name: "unknown static server policy", from: "staticServers: IPAddresses", to: "staticServers: Anything", wantAPI: "spec.backends.staticServers"},
		{name: "allowed range not a network", from: "allowedCIDRs: [198.18.0.0/16]", to: "allowedCIDRs: [everywhere]", wantAPI: "spec.backends.allowedCIDRs[0]"},
		{name: "interface with a space", from: "interface: eth0", to: `interface: "eth0 up"`, wantAPI: "spec.dataPlane.interface"},
		{name: "a PriorityClass", from: "interface: eth0", to: "interface: eth0\n    priorityClassName: edge-critical"},
		{name: "a PriorityClass not a name", from: "interface: eth0", to: "interface: eth0\n    priorityClassName: Edge_Critical", wantAPI: "spec.dataPlane.priorityClassName"},
		{name: "advert not centiseconds", from: "advertIntervalMilliseconds: 100", to: "advertIntervalMilliseconds: 105", wantAPI: "spec.vrrp.advertIntervalMilliseconds"},
		{name: "IPv4 groups not multicast", from: "ipv4: 239.255.18.0/24", to: "ipv4: 198.18.0.0/24", wantAPI: "spec.vrrp.multicastGroups.ipv4"},
		{name: "IPv4 groups with host bits", from: "ipv4: 239.255.18.0/24", to: "ipv4: 239.255.18.1/24", wantAPI: "spec.vrrp.multicastGroups.ipv4"},
		{name: "IPv4 groups too few for every router ID", from: "ipv4: 239.255.18.0/24", to: "ipv4: 239.255.18.0/25", wantAPI: "at least 8 host bits"},
		{name: "IPv4 groups of IPv6", from: "ipv4: 239.255.18.0/24", to: `ipv4: "ff02::18:0/120"`, wantAPI: "spec.vrrp.multicastGroups.ipv4"},
		{name: "IPv6 groups not multicast", from: `ipv6: "ff02::18:0/120"`, to: `ipv6: "2001:db8::/120"`, wantAPI: "spec.vrrp.multicastGroups.ipv6"},
		{name: "IPv6 groups too few", from: `ipv6: "ff02::18:0/120"`, to: `ipv6: "ff02::18:0/121"`, wantAPI: "spec.vrrp.multicastGroups.ipv6"},
		{name: "wider IPv4 block", from: "ipv4: 239.255.18.0/24", to: "ipv4: 239.255.0.0/16"},
		{name: "health checks too fast to allow", from: "minHealthCheckIntervalMilliseconds: 1000", to: "minHealthCheckIntervalMilliseconds: 10", wantAPI: "spec.limits.minHealthCheckIntervalMilliseconds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := createDryRun(t, mutated(t, classBase, tt.from, tt.to))
			switch {
			case err != nil && strings.Contains(err.Error(), "evaluating rule"):
				t.Fatalf("a CEL rule failed to evaluate: %v", err)
			case tt.wantAPI == "" && err != nil:
				t.Fatalf("API server rejected a valid class: %v", err)
			case tt.wantAPI != "" && err == nil:
				t.Fatalf("API server accepted it; want an error with %q", tt.wantAPI)
			case tt.wantAPI != "" && !strings.Contains(err.Error(), tt.wantAPI):
				t.Fatalf("API error %q does not contain %q", err, tt.wantAPI)
			}
		})
	}
}
