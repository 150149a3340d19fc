package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

// HAProxyMetricsPath serves HAProxy's own Prometheus exporter, which
// listens on a unix socket inside the pod.
const HAProxyMetricsPath = "/metrics/haproxy"

// Tracked files, as the tracked_file metric's file label names them.
const (
	trackedHealth      = "health"
	trackedPreemptHold = "preempt_hold"
	trackedNoServers   = "no_servers"
	trackedMaintenance = "maintenance"
)

// vrrpStates are the vrrp_state metric's state label values, one series
// each (a Prometheus state set).
var vrrpStates = []v1alpha1.VRRPRole{v1alpha1.VRRPRoleMaster, v1alpha1.VRRPRoleBackup, v1alpha1.VRRPRoleFault, v1alpha1.VRRPRoleUnknown}

// agentMetrics are one agent's figures: what this node's data plane of one
// LoadBalancer does. Every series carries the LoadBalancer and the node as
// constant labels, so they survive relabelling by the pod's namespace
// (always the data-plane namespace, not the LoadBalancer's).
type agentMetrics struct {
	vrrpState        *prometheus.GaugeVec
	vrrpTransitions  prometheus.Counter
	reloads          prometheus.Counter
	reloadFailures   prometheus.Counter
	runtimeUpdates   prometheus.Counter
	configRejections *prometheus.CounterVec
	configInfo       *prometheus.GaugeVec
	trackedFile      *prometheus.GaugeVec
	healthyServers   *prometheus.GaugeVec

	// What the info and per-backend series hold now, so that a change
	// deletes only the series that went away: a Reset would let a scrape
	// in between see none.
	hash     string
	backends map[string]bool
}

func newAgentMetrics(reg prometheus.Registerer, o Options) *agentMetrics {
	labels := prometheus.Labels{"loadbalancer_namespace": o.LoadBalancerNamespace, "loadbalancer": o.LoadBalancer, "node": o.Node}
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "hakeeper", Subsystem: "agent", Name: name, Help: help, ConstLabels: labels}
	}
	m := &agentMetrics{
		vrrpState: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("vrrp_state",
			"Keepalived's VRRP state on this node, from its notifications: 1 for the current state, 0 for the others.")), []string{"state"}),
		vrrpTransitions: prometheus.NewCounter(prometheus.CounterOpts(opts("vrrp_transitions_total",
			"VRRP state changes keepalived notified on this node."))),
		reloads: prometheus.NewCounter(prometheus.CounterOpts(opts("haproxy_reloads_total",
			"HAProxy reloads the agent asked the master for."))),
		reloadFailures: prometheus.NewCounter(prometheus.CounterOpts(opts("haproxy_reload_failures_total",
			"HAProxy reloads that failed."))),
		runtimeUpdates: prometheus.NewCounter(prometheus.CounterOpts(opts("haproxy_runtime_updates_total",
			"Server changes (one per new config) applied through HAProxy's runtime API, without a reload."))),
		configRejections: prometheus.NewCounterVec(prometheus.CounterOpts(opts("config_rejections_total",
			"Configs refused on this node before they ran, by the daemon whose config it was; the last good config kept running.")), []string{"daemon"}),
		configInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("config_info",
			"The config this node runs: always 1, with its hash as LoadBalancer status reports it.")), []string{"hash"}),
		trackedFile: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("tracked_file",
			"Files keepalived tracks: 1 when set (health: HAProxy does not answer, so the node goes FAULT; no_servers: no backend has a server up, so the node drops to the lowest priority; maintenance: the node is cordoned or annotated for maintenance and hands the VIPs over; preempt_hold: the node waits at the lowest priority).")), []string{"file"}),
		healthyServers: prometheus.NewGaugeVec(prometheus.GaugeOpts(opts("backend_servers_up",
			"Servers up per backend, as the agent's health check reads HAProxy's stats.")), []string{"backend"}),
	}
	reg.MustRegister(m.vrrpState, m.vrrpTransitions, m.reloads, m.reloadFailures, m.runtimeUpdates,
		m.configRejections, m.configInfo, m.trackedFile, m.healthyServers)
	// Every series exists from the start, so rate() and absent() work
	// before the first event.
	m.setVRRPState(v1alpha1.VRRPRoleUnknown)
	for _, daemon := range []string{"haproxy", "keepalived"} {
		m.configRejections.WithLabelValues(daemon)
	}
	m.trackedFile.WithLabelValues(trackedHealth).Set(1)
	m.trackedFile.WithLabelValues(trackedPreemptHold).Set(1)
	m.trackedFile.WithLabelValues(trackedNoServers).Set(1)
	m.trackedFile.WithLabelValues(trackedMaintenance).Set(0)
	return m
}

func (m *agentMetrics) setVRRPState(role v1alpha1.VRRPRole) {
	for _, s := range vrrpStates {
		v := 0.0
		if s == role {
			v = 1
		}
		m.vrrpState.WithLabelValues(strings.ToLower(string(s))).Set(v)
	}
}

func (m *agentMetrics) setConfigHash(hash string) {
	m.configInfo.WithLabelValues(hash).Set(1)
	if m.hash != "" && m.hash != hash {
		m.configInfo.DeleteLabelValues(m.hash)
	}
	m.hash = hash
}

func (m *agentMetrics) setTracked(file string, set bool) {
	v := 0.0
	if set {
		v = 1
	}
	m.trackedFile.WithLabelValues(file).Set(v)
}

// setBackends replaces the per-backend figures (a backend removed from the
// config loses its series). Only the health loop calls it.
func (m *agentMetrics) setBackends(backends map[string]contract.BackendCount) {
	if backends == nil { // HAProxy did not answer: nothing is up through it
		for backend := range m.backends {
			m.healthyServers.WithLabelValues(backend).Set(0)
		}
		return
	}
	for backend, c := range backends {
		m.healthyServers.WithLabelValues(backend).Set(float64(c.Up))
	}
	for backend := range m.backends {
		if _, ok := backends[backend]; !ok {
			m.healthyServers.DeleteLabelValues(backend)
		}
	}
	m.backends = map[string]bool{}
	for backend := range backends {
		m.backends[backend] = true
	}
}

// serveMetrics serves the agent's metrics at /metrics and HAProxy's
// exporter at /metrics/haproxy on the node's own address (never a virtual
// IP), over HTTPS with a self-signed certificate, to callers the API
// server authenticates and authorizes for `get` on those paths (ClusterRole
// hakeeper-metrics-reader): the figures name backends and servers, which
// other tenants must not read.
func (a *Agent) serveMetrics(ctx context.Context, cfg *rest.Config) error {
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return err
	}
	socket := a.o.Paths.MetricsSocket()
	haproxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(&url.URL{Scheme: "http", Host: "haproxy"})
			r.Out.URL.Path = "/metrics"
			// The caller's token is for the agent, not for HAProxy.
			r.Out.Header.Del("Authorization")
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
	srv, err := metricsserver.NewServer(metricsserver.Options{
		BindAddress:    net.JoinHostPort(a.o.HostIP, strconv.Itoa(a.o.MetricsPort)),
		SecureServing:  true,
		FilterProvider: filters.WithAuthenticationAndAuthorization,
		ExtraHandlers:  map[string]http.Handler{HAProxyMetricsPath: haproxy},
	}, cfg, httpClient)
	if err != nil {
		return err
	}
	return srv.Start(ctx)
}

// registry is where the agent's metrics go: controller-runtime's, which
// the metrics server serves and which already holds client-go's figures.
var registry prometheus.Registerer = ctrlmetrics.Registry
