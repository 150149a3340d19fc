package agent

import (
	"context"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/tools/cache"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/configcheck"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// newGuardFixture is newSyncFixture without the real daemons: the checker
// names binaries that do not exist, so a config that gets past the guard
// fails with "failed to run", and one the guard refuses never gets there.
func newGuardFixture(t *testing.T) *syncFixture {
	dir := t.TempDir()
	lb := &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns"}}
	f := &syncFixture{haproxy: cache.NewStore(cache.MetaNamespaceKeyFunc), keep: cache.NewStore(cache.MetaNamespaceKeyFunc), names: desired.NamesFor(lb)}
	missing := configcheck.Checker{HAProxy: filepath.Join(dir, "no-haproxy"), Keepalived: filepath.Join(dir, "no-keepalived")}
	f.agent = &Agent{
		// The goldens' maxconn needs more files than this sandbox allows.
		o: Options{Node: "n1", Namespace: "ns", LoadBalancer: "web", Checker: missing, OpenFileLimit: 1 << 20,
			Paths: contract.Paths{RunDir: filepath.Join(dir, "run"), ConfigDir: filepath.Join(dir, "etc")}},
		metrics: newAgentMetrics(prometheus.NewRegistry(), Options{Node: "n1", LoadBalancer: "web", LoadBalancerNamespace: "ns"}),
		names:   f.names, client: fake.NewClientset(), haproxy: f.haproxy, keep: f.keep,
		trigger: make(chan struct{}, 1), changed: make(chan struct{}, 1), secretWatches: map[string]context.CancelFunc{},
	}
	if err := f.agent.prepareFiles(); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestSyncRefusesWhatHakeeperDoesNotRender: a config outside the
// renderer's vocabulary is reported like a daemon's rejection, before any
// candidate file is written or any daemon runs, and the last good config
// keeps serving.
func TestSyncRefusesWhatHakeeperDoesNotRender(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		haproxyCfg, keepalivedCfg string
		want                      string
	}{
		{"program section", goodHAProxy + "program evil\n    command /bin/sh -c id\n", goodKeepalived,
			`haproxy.cfg line 13: "program" is not something hakeeper renders`},
		{"lua-load", strings.Replace(goodHAProxy, "global\n", "global\n    lua-load /tmp/x.lua\n", 1), goodKeepalived,
			`haproxy.cfg line 2: "lua-load" is not something hakeeper renders`},
		{"notify script", goodHAProxy, strings.Replace(goodKeepalived, "}\n", "    notify_fifo_script /bin/sh\n}\n", 1),
			`keepalived.conf line 3: "notify_fifo_script" is not something hakeeper renders in global_defs`},
		{"vrrp_script", goodHAProxy, goodKeepalived + "vrrp_script chk {\n    script /bin/sh\n}\n",
			`keepalived.conf line 4: "vrrp_script" is not something hakeeper renders`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newGuardFixture(t)
			// What runs: a config applied earlier.
			p := f.agent.o.Paths
			for file, data := range map[string]string{p.HAProxyConfig(): goodHAProxy, p.KeepalivedConfig(): goodKeepalived} {
				if err := os.WriteFile(file, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			f.agent.applied = appliedConfig{haproxyCfg: goodHAProxy, keepalivedConf: goodKeepalived, vrrpPeers: "198.18.0.11\n198.18.0.12\n", certs: map[string]string{}}
			hash := contract.NodeConfigHash([]byte(goodHAProxy), []byte(goodKeepalived))
			f.agent.update(func(r *contract.NodeReport) { r.ConfigHash = hash })

			f.publish(t, tc.haproxyCfg, tc.keepalivedCfg, `{}`)
			if err := f.agent.sync(context.Background()); err != nil {
				t.Fatal(err)
			}
			r := f.agent.snapshot()
			if r.Message != tc.want {
				t.Errorf("report message %q, want %q", r.Message, tc.want)
			}
			if r.ConfigHash != hash {
				t.Errorf("the report's hash moved to a config that does not run: %s", r.ConfigHash)
			}
			if f.onDisk(t, contract.HAProxyConfigFile) != goodHAProxy || f.onDisk(t, contract.KeepalivedConfigFile) != goodKeepalived {
				t.Error("a refused config replaced the running one")
			}
			for _, file := range []string{p.HAProxyConfig(), p.KeepalivedConfig()} {
				candidate := filepath.Join(filepath.Dir(file), ".candidate-"+filepath.Base(file))
				if _, err := os.Stat(candidate); !os.IsNotExist(err) {
					t.Errorf("%s was written for a refused config (%v)", candidate, err)
				}
			}
		})
	}
}

// TestCheckPassesRenderedConfigsToTheDaemons: the renderer's goldens, with the
// agent's run directory, get past the guard to the daemons' checks.
func TestCheckPassesRenderedConfigsToTheDaemons(t *testing.T) {
	f := newGuardFixture(t)
	golden := func(pattern string) string {
		files, err := filepath.Glob(filepath.Join("..", "render", "testdata", "*", "*", pattern))
		if err != nil || len(files) == 0 {
			t.Fatalf("no golden %s (%v)", pattern, err)
		}
		data, err := os.ReadFile(files[0])
		if err != nil {
			t.Fatal(err)
		}
		return strings.ReplaceAll(string(data), contract.DefaultPaths().RunDir+"/", f.agent.o.Paths.RunDir+"/")
	}
	want := appliedConfig{haproxyCfg: golden(contract.HAProxyConfigFile + ".golden"), keepalivedConf: golden("*." + contract.KeepalivedConfigFile + ".golden")}
	daemon, err := f.agent.check(context.Background(), want)
	if err == nil || !strings.Contains(err.Error(), "failed to run haproxy") || daemon != "haproxy" {
		t.Fatalf("got %v, want the guard to pass and running the missing haproxy to fail", err)
	}
	// The candidate names the candidate certificates, not the live ones.
	p := f.agent.o.Paths
	wantCandidate := strings.ReplaceAll(want.haproxyCfg, path.Dir(p.CertificateFile("x"))+"/", path.Dir(p.CandidateCertificateFile("x"))+"/")
	got, err := os.ReadFile(filepath.Join(p.HAProxyConfigDir(), ".candidate-"+contract.HAProxyConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != wantCandidate {
		t.Error("the candidate haproxy.cfg was not written, naming the candidate certificates")
	}
}
