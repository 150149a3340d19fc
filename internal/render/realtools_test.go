package render

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hakeeper/hakeeper/internal/configcheck"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/testing/testcert"
)

// These tests run the real haproxy and keepalived (Debian's packages), as
// root: keepalived checks interface names, so it runs in a network namespace
// that has them, and haproxy opens the certificates and state file the
// config names, so it runs in a mount namespace with a private /run seeded
// with them. `make test` sets HAKEEPER_REQUIRE_REAL_TOOLS=1, which turns a
// missing tool into a failure instead of a skip.

// sampleHosts resolves the DNS names the samples use.
const sampleHosts = "127.0.0.1 localhost\n198.18.0.53 pg-standby.db.example.internal\n"

// interfacesInGoldens are the interface names the samples use.
var interfacesInGoldens = []string{"eth0", "ens5"}

func requireRealTools(t *testing.T) {
	t.Helper()
	var missing []string
	for _, tool := range []string{"haproxy", "keepalived", "ip", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if len(missing) == 0 {
		return
	}
	msg := fmt.Sprintf("real config checks need %s", strings.Join(missing, ", "))
	if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// netnsChecker makes a network namespace with the given interfaces (veth
// pairs: the dummy link type is not available everywhere) and returns a
// Checker that runs inside it. The namespace is removed on cleanup.
func netnsChecker(t *testing.T, ifaces ...string) configcheck.Checker {
	t.Helper()
	ns := fmt.Sprintf("hk-render-%d", os.Getpid())
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	for i, iface := range ifaces {
		run(t, "ip", "-n", ns, "link", "add", iface, "type", "veth", "peer", "name", fmt.Sprintf("hkpeer%d", i))
		run(t, "ip", "-n", ns, "link", "set", iface, "up")
	}
	c := configcheck.Default()
	c.Prefix = []string{"ip", "netns", "exec", ns}
	return c
}

// mountnsChecker returns a Checker whose haproxy sees a private tmpfs on
// /run holding a state file and a certificate for each TLS listener.
func mountnsChecker(t *testing.T, tlsListeners ...string) configcheck.Checker {
	t.Helper()
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	// DNS names in the samples resolve through a private /etc/hosts: the
	// test must not depend on the machine's resolver.
	hosts := filepath.Join(dir, "hosts")
	if err := os.WriteFile(hosts, []byte(sampleHosts), 0o644); err != nil {
		t.Fatal(err)
	}
	p := contract.DefaultPaths()
	script := fmt.Sprintf(`set -e
mount -t tmpfs hakeeper-test /run
mount --bind %[4]s /etc/hosts
mkdir -p %[1]s "$(dirname %[2]s)"
echo 1 > %[2]s
for l in $HK_TLS; do cp %[3]s %[1]s/$l.pem; done
exec "$@"`, filepath.Dir(p.CertificateFile("x")), p.ServerState(), cert, hosts)
	c := configcheck.Default()
	c.Prefix = []string{"env", "HK_TLS=" + strings.Join(tlsListeners, " "),
		"unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"}
	return c
}

func run(t *testing.T, argv ...string) {
	t.Helper()
	if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
}

func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	cert, key, err := testcert.SelfSigned("hakeeper.test")
	if err != nil {
		t.Fatal(err)
	}
	return append(cert, key...)
}

// tlsListenersIn reads the listener names of the "ssl crt" binds back from
// a config, so the check seeds exactly the certificates it names.
func tlsListenersIn(cfg []byte) []string {
	var out []string
	seen := map[string]bool{}
	for _, field := range strings.Fields(string(cfg)) {
		dir := filepath.Dir(contract.DefaultPaths().CertificateFile("x"))
		if name, ok := strings.CutPrefix(field, dir+"/"); ok && !seen[name] {
			seen[name] = true
			out = append(out, strings.TrimSuffix(name, ".pem"))
		}
	}
	return out
}

func goldens(t *testing.T, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "TestSamples", "*", pattern))
	if err != nil || len(files) == 0 {
		t.Fatalf("no goldens match %s: %v", pattern, err)
	}
	return files
}

// TestGoldensPassRealTools runs every golden file through the daemon that
// will read it. A warning fails the test too: it usually means a directive
// is ignored.
func TestGoldensPassRealTools(t *testing.T) {
	requireRealTools(t)
	ctx := context.Background()
	keepalived := netnsChecker(t, interfacesInGoldens...)
	for _, file := range goldens(t, "*.keepalived.conf.golden") {
		res, err := keepalived.KeepalivedConfig(ctx, file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
		} else if len(res.Warnings) > 0 {
			t.Errorf("%s: keepalived warned: %v", file, res.Warnings)
		}
	}
	for _, file := range goldens(t, "haproxy.cfg.golden") {
		cfg, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		res, err := mountnsChecker(t, tlsListenersIn(cfg)...).HAProxyConfig(ctx, file)
		if err != nil {
			t.Errorf("%s: %v", file, err)
		} else if len(res.Warnings) > 0 {
			t.Errorf("%s: haproxy warned: %v", file, res.Warnings)
		}
	}
}

// TestBrokenConfigsRejected proves the checks can fail: a directive HAProxy
// does not know, and an interface the node lacks, are refused with the
// tool's own message.
func TestBrokenConfigsRejected(t *testing.T) {
	requireRealTools(t)
	ctx := context.Background()
	dir := t.TempDir()

	cfg, err := os.ReadFile(filepath.Join("testdata", "TestSamples", "postgres", "haproxy.cfg.golden"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(cfg), "    option tcplog\n", "    option tcplog\n    option no-such-option\n", 1)
	brokenCfg := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(brokenCfg, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = mountnsChecker(t).HAProxyConfig(ctx, brokenCfg)
	assertRejected(t, err, "haproxy", "no-such-option")

	conf, err := os.ReadFile(filepath.Join("testdata", "TestSamples", "postgres", "edge-a.keepalived.conf.golden"))
	if err != nil {
		t.Fatal(err)
	}
	brokenConf := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(brokenConf, []byte(strings.ReplaceAll(string(conf), "eth0", "nosuch0")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = netnsChecker(t, "eth0").KeepalivedConfig(ctx, brokenConf)
	assertRejected(t, err, "keepalived", "nosuch0")
}

func assertRejected(t *testing.T, err error, tool, mention string) {
	t.Helper()
	var rejected *configcheck.RejectedError
	if !errors.As(err, &rejected) {
		t.Fatalf("%s accepted a broken config (err = %v)", tool, err)
	}
	if rejected.Tool != tool || !strings.Contains(rejected.Output, mention) {
		t.Errorf("%s's rejection does not mention %q: %v", tool, mention, rejected)
	}
}
