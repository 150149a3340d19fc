package agent

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

// TestMetricsExposition: the names, labels and state-set shape scrapers
// see, before any event and after a VRRP transition and a health change.
func TestMetricsExposition(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newAgentMetrics(reg, Options{Node: "node-a", LoadBalancer: "web", LoadBalancerNamespace: "shop"})
	const labels = `loadbalancer="web",loadbalancer_namespace="shop",node="node-a"`
	want := func(state string) string {
		var b strings.Builder
		b.WriteString("# HELP hakeeper_agent_vrrp_state Keepalived's VRRP state on this node, from its notifications: 1 for the current state, 0 for the others.\n# TYPE hakeeper_agent_vrrp_state gauge\n")
		for _, s := range []string{"backup", "fault", "master", "unknown"} {
			v := "0"
			if s == state {
				v = "1"
			}
			b.WriteString("hakeeper_agent_vrrp_state{" + labels + `,state="` + s + `"} ` + v + "\n")
		}
		return b.String()
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want("unknown")), "hakeeper_agent_vrrp_state"); err != nil {
		t.Error(err)
	}
	m.setVRRPState(v1alpha1.VRRPRoleMaster)
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want("master")), "hakeeper_agent_vrrp_state"); err != nil {
		t.Error(err)
	}

	m.setTracked(trackedHealth, false)
	m.setBackends(map[string]contract.BackendCount{"web": {Up: 2, Total: 3}})
	m.setBackends(map[string]contract.BackendCount{"api": {Up: 1, Total: 1}}) // web left the config
	m.setBackends(nil)                                                        // HAProxy does not answer
	if got := testutil.ToFloat64(m.healthyServers.WithLabelValues("api")); got != 0 {
		t.Errorf("servers up through a HAProxy that does not answer: %v", got)
	}
	m.setBackends(map[string]contract.BackendCount{"api": {Up: 1, Total: 1}})
	m.setConfigHash("aaa")
	m.setConfigHash("bbb")
	if n := testutil.CollectAndCount(m.configInfo); n != 1 || testutil.ToFloat64(m.configInfo.WithLabelValues("bbb")) != 1 {
		t.Errorf("config_info: %d series; want only the running config's", n)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP hakeeper_agent_backend_servers_up Servers up per backend, as the agent's health check reads HAProxy's stats.
# TYPE hakeeper_agent_backend_servers_up gauge
hakeeper_agent_backend_servers_up{backend="api",`+labels+`} 1
# HELP hakeeper_agent_tracked_file Files keepalived tracks: 1 when set (health: HAProxy does not answer, so the node goes FAULT; no_servers: no backend has a server up, so the node drops to the lowest priority; maintenance: the node is cordoned or annotated for maintenance and hands the VIPs over; preempt_hold: the node waits at the lowest priority).
# TYPE hakeeper_agent_tracked_file gauge
hakeeper_agent_tracked_file{file="health",`+labels+`} 0
hakeeper_agent_tracked_file{file="maintenance",`+labels+`} 0
hakeeper_agent_tracked_file{file="no_servers",`+labels+`} 1
hakeeper_agent_tracked_file{file="preempt_hold",`+labels+`} 1
`), "hakeeper_agent_tracked_file", "hakeeper_agent_backend_servers_up"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 12 {
		t.Errorf("%d series (%v): every series should exist before its first event", n, err)
	}
}
