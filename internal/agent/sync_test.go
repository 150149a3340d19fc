package agent

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/configcheck"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// The checks run the real haproxy and keepalived; nothing is running, so
// this first apply writes files without reloading anything.
const (
	goodHAProxy    = "global\n    log stdout format raw local0\ndefaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\nfrontend web\n    bind 127.0.0.1:8080\n    default_backend web\nbackend web\n    server s1 127.0.0.1:9000\n"
	rejectedConfig = "global\ndefaults\n    mode http\nfrontend web\n    bind 127.0.0.1:8080\n    timeout no-such-directive 1s\n"
	goodKeepalived = "global_defs {\n    router_id n1\n}\n"
)

func requireTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"haproxy", "keepalived"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
				t.Fatalf("%s is missing", tool)
			}
			t.Skipf("%s is missing", tool)
		}
	}
}

type syncFixture struct {
	agent         *Agent
	haproxy, keep cache.Store
	names         desired.Names
}

func newSyncFixture(t *testing.T) *syncFixture {
	dir := t.TempDir()
	return newSyncFixtureIn(t, contract.Paths{RunDir: filepath.Join(dir, "run"), ConfigDir: filepath.Join(dir, "etc")})
}

// newSyncFixtureIn is an agent on these paths: another agent's, to play
// its restart.
func newSyncFixtureIn(t *testing.T, paths contract.Paths) *syncFixture {
	requireTools(t)
	lb := &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	f := &syncFixture{haproxy: cache.NewStore(cache.MetaNamespaceKeyFunc), keep: cache.NewStore(cache.MetaNamespaceKeyFunc), names: desired.NamesFor(lb)}
	f.agent = &Agent{
		o:       Options{Node: "n1", Namespace: "ns", LoadBalancer: "web", Checker: configcheck.Default(), Paths: paths},
		metrics: newAgentMetrics(prometheus.NewRegistry(), Options{Node: "n1", LoadBalancer: "web", LoadBalancerNamespace: "ns"}),
		names:   f.names, client: fake.NewClientset(), haproxy: f.haproxy, keep: f.keep,
		trigger: make(chan struct{}, 1), changed: make(chan struct{}, 1), secretWatches: map[string]context.CancelFunc{},
	}
	if err := f.agent.prepareFiles(); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *syncFixture) publish(t *testing.T, haproxyCfg, keepalivedConf, vrrpJSON string) {
	t.Helper()
	put := func(store cache.Store, name string, data map[string]string) {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns"}, Data: data}
		if err := store.Update(cm); err != nil {
			t.Fatal(err)
		}
	}
	// Every record the operator writes names the VRRP peers; one that
	// names none is an older operator's, which the agent waits out.
	var record map[string]any
	if err := json.Unmarshal([]byte(vrrpJSON), &record); err != nil {
		t.Fatal(err)
	}
	if _, ok := record["peers"]; !ok {
		record["peers"] = []string{"198.18.0.11", "198.18.0.12"}
	}
	data, err := json.Marshal(record)
	if err != nil {
		t.Fatal(err)
	}
	vrrpJSON = string(data)
	put(f.haproxy, f.names.HAProxyConfigMap, map[string]string{contract.KeyHAProxyConfig: haproxyCfg})
	put(f.keep, f.names.KeepalivedConfigMap, map[string]string{"n1" + contract.KeepalivedKeySuffix: keepalivedConf, contract.KeyVRRP: vrrpJSON})
}

func (f *syncFixture) onDisk(t *testing.T, name string) string {
	t.Helper()
	p := f.agent.o.Paths
	file := map[string]string{contract.HAProxyConfigFile: p.HAProxyConfig(), contract.KeepalivedConfigFile: p.KeepalivedConfig(),
		contract.VRRPPeersFile: p.VRRPPeers()}[name]
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestSyncAppliesCheckedConfigsAndRefusesRejectedOnes(t *testing.T) {
	f := newSyncFixture(t)
	ctx := context.Background()

	f.publish(t, goodHAProxy, goodKeepalived, `{"virtualRouterID":7,"priorities":{"n1":100},"preemptDelaySeconds":7}`)
	if err := f.agent.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if f.onDisk(t, contract.HAProxyConfigFile) != goodHAProxy || f.onDisk(t, contract.KeepalivedConfigFile) != goodKeepalived {
		t.Fatal("the checked configs were not installed")
	}
	if got := f.onDisk(t, contract.VRRPPeersFile); got != "198.18.0.11\n198.18.0.12\n" {
		t.Errorf("VRRP peers file %q, want the record's peers one per line", got)
	}
	wantHash := contract.NodeConfigHash([]byte(goodHAProxy), []byte(goodKeepalived))
	if r := f.agent.snapshot(); r.ConfigHash != wantHash || r.Message != "" {
		t.Errorf("report %+v, want hash %s and no message", r, wantHash)
	}
	if got := time.Duration(f.agent.preemptDelay.Load()); got != 7*time.Second {
		t.Errorf("preempt delay %v, want 7s from vrrp.json", got)
	}

	f.publish(t, rejectedConfig, goodKeepalived, `{"virtualRouterID":7}`)
	if err := f.agent.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if f.onDisk(t, contract.HAProxyConfigFile) != goodHAProxy {
		t.Error("a rejected config replaced the running one")
	}
	r := f.agent.snapshot()
	if !strings.Contains(r.Message, "haproxy rejected the config") || !strings.Contains(r.Message, "no-such-directive") {
		t.Errorf("the report does not carry HAProxy's words: %q", r.Message)
	}
	if r.ConfigHash != wantHash {
		t.Errorf("the report's hash moved to a config that does not run: %s", r.ConfigHash)
	}
	// The metrics tell the same: one HAProxy config refused, the good one's
	// hash still the one running.
	if got := testutil.ToFloat64(f.agent.metrics.configRejections.WithLabelValues("haproxy")); got != 1 {
		t.Errorf("config_rejections_total{daemon=haproxy} = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.agent.metrics.configRejections.WithLabelValues("keepalived")); got != 0 {
		t.Errorf("config_rejections_total{daemon=keepalived} = %v, want 0", got)
	}
	if got := testutil.ToFloat64(f.agent.metrics.configInfo.WithLabelValues(wantHash)); got != 1 || testutil.CollectAndCount(f.agent.metrics.configInfo) != 1 {
		t.Errorf("config_info: %v series, hash %s = %v; want exactly the running config's", testutil.CollectAndCount(f.agent.metrics.configInfo), wantHash, got)
	}

	// Reverting the spec clears the complaint; nothing needs applying.
	f.publish(t, goodHAProxy, goodKeepalived, `{"virtualRouterID":7}`)
	if err := f.agent.sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r := f.agent.snapshot(); r.Message != "" || r.ConfigHash != wantHash {
		t.Errorf("after the revert: report %+v", r)
	}
	if f.agent.preemptDelay.Load() != 0 {
		t.Error("the preempt delay did not follow vrrp.json")
	}
}

func TestSyncWaitsForThisNodesKeepalivedConfig(t *testing.T) {
	f := newSyncFixture(t)
	f.publish(t, goodHAProxy, "", `{}`)
	if err := f.agent.sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(f.agent.o.Paths.HAProxyConfig()); !os.IsNotExist(err) {
		t.Error("HAProxy's config was installed before this node's keepalived.conf existed")
	}
}

// TestWithoutListeners: a listener whose Secret cannot be read loses its
// frontend and nothing else.
func TestWithoutListeners(t *testing.T) {
	cfg := "global\n    maxconn 10\n\nfrontend fe_https\n    mode http\n    bind 1.2.3.4:443 ssl crt /x/https.pem\n    default_backend be_web\n\nfrontend fe_http\n    mode http\n    bind 1.2.3.4:80\n    default_backend be_web\n\nbackend be_web\n    server s1 1.2.3.5:80\n"
	got := withoutListeners(cfg, []string{"https"})
	want := "global\n    maxconn 10\n\nfrontend fe_http\n    mode http\n    bind 1.2.3.4:80\n    default_backend be_web\n\nbackend be_web\n    server s1 1.2.3.5:80\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
