package e2e

// The data plane as an attacker would try it: a host on the segment
// forging VRRP adverts, and a compromised HAProxy reaching for what its
// container does not need.

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestForgedAdvertsIgnored: VRRPv3 has no authentication, so a host on
// the segment that sends priority-254 adverts for a LoadBalancer's router
// ID and virtual IP (both shown to any reader of the LoadBalancer) would
// make every node give the VIP up. Here the client and a backend, neither
// a data-plane node, do so for 10 s at 10 ms each while the client probes
// the VIP every 10 ms: no request may fail, no node may change its VRRP
// state, and node-a keeps the VIP. Each node's filter counter shows the
// forged adverts arrived and were dropped, so the test cannot pass by
// sending nothing.
func TestForgedAdvertsIgnored(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	var cur v1alpha1.LoadBalancer
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), &cur); err != nil {
		t.Fatal(err)
	}
	routerID := uint8(cur.Status.VirtualRouterID)
	if routerID == 0 {
		t.Fatal("the LoadBalancer shows no router ID")
	}
	settled(t, l, lb)
	attacked := time.Now()
	droppedBefore := map[string]uint64{}
	for i := range 3 {
		n, tables, err := l.VRRPFilterDropped(lab.NodeName(i), routerID)
		if err != nil || len(tables) != 1 {
			t.Fatalf("%s: VRRP filter tables %v (%v), want exactly one for router ID %d", lab.NodeName(i), tables, err, routerID)
		}
		droppedBefore[lab.NodeName(i)] = n
	}

	probe := lab.NewProbeClient(l).StartProbe("http://"+vip+"/", 10*time.Millisecond, time.Minute)
	attackers := map[string]string{"client": lab.ClientAddr, lab.BackendName(0): lab.BackendAddr(0)}
	var mu sync.Mutex
	sent := 0
	var wg sync.WaitGroup
	for host, addr := range attackers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := l.ForgeAdverts(ctx, host, addr, routerID, vip, 10*time.Millisecond, 10*time.Second)
			mu.Lock()
			defer mu.Unlock()
			sent += n
			if err != nil {
				t.Errorf("forging adverts from %s: %v", host, err)
			}
		}()
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond) // an advert's effect, had it any
	outage, answered, failed := probe.Stop()
	t.Logf("forged %d adverts for router ID %d from %v; the client saw %d answered, %d failed, longest gap %v",
		sent, routerID, slices.Sorted(maps.Keys(attackers)), answered, failed, outage)
	if sent < 1500 {
		t.Fatalf("only %d adverts sent", sent)
	}
	if failed != 0 {
		t.Errorf("%d requests failed under forged adverts: %v", failed, probe.Errors())
	}
	if !l.HoldsVIP(lab.NodeName(0), vip) || l.HoldsVIP(lab.NodeName(1), vip) || l.HoldsVIP(lab.NodeName(2), vip) {
		t.Errorf("the VIP moved: node-a %v, node-b %v, node-c %v", l.HoldsVIP(lab.NodeName(0), vip),
			l.HoldsVIP(lab.NodeName(1), vip), l.HoldsVIP(lab.NodeName(2), vip))
	}
	noStateChange(t, l, lb, attacked, "under forged adverts")
	for i := range 3 {
		node := lab.NodeName(i)
		n, _, err := l.VRRPFilterDropped(node, routerID)
		if err != nil {
			t.Fatal(err)
		}
		// Every forged advert reaches every node over the bridge; allow
		// for a few lost on a loaded machine.
		if dropped := n - droppedBefore[node]; dropped < uint64(sent)*9/10 {
			t.Errorf("%s's VRRP filter dropped %d of the %d forged adverts", node, dropped, sent)
		} else {
			t.Logf("%s's VRRP filter dropped %d of the %d forged adverts", node, dropped, sent)
		}
	}
}

// TestHAProxyConfined: HAProxy parses untrusted traffic, so its container
// holds only what binding and dropping privileges need. From inside it (a
// process with the container's user, capabilities and seccomp filter, as
// a compromised HAProxy master would be), adding an interface, writing
// keepalived.conf or haproxy.cfg, and signalling keepalived all fail; its
// workers run as an unprivileged user with no capability, chrooted in an
// empty directory. And while the agent's exec probes run (over several
// probe periods), no other container can read the agent's token through
// /proc.
func TestHAProxyConfined(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	node := lab.NodeName(0)
	container := func(name string) lab.RunningContainer {
		c, err := l.Container(node, lb, name)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	haproxy, keepalived := container(desired.ContainerHAProxy), container(desired.ContainerKeepalived)
	paths := contract.DefaultPaths()
	inHAProxy := func(script string) (string, error) {
		out, err := l.Exec(ctx, node, haproxy, "sh", "-c", script)
		return strings.TrimSpace(string(out)), err
	}
	for _, tc := range []struct{ what, script, want string }{
		{"add an interface", "ip link add hk-evil type veth peer name hk-evil2", "Operation not permitted"},
		// Not mounted at all, on a read-only root.
		{"write keepalived.conf", "echo 'vrrp_script x {}' > " + paths.KeepalivedConfig(), "nonexistent"},
		{"write haproxy.cfg", "echo 'program x' > " + paths.HAProxyConfig(), "Read-only file system"},
		{"write a certificate", "echo x > " + paths.CertificateFile("evil"), "Read-only file system"},
	} {
		out, err := inHAProxy(tc.script)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("from the haproxy container, %s: %v %q, want a failure saying %q", tc.what, err, out, tc.want)
		} else {
			t.Logf("from the haproxy container, %s: %s", tc.what, out)
		}
	}
	// The data plane's share: its pods rank above tenants' and count in
	// the chart's quota on them.
	var pods corev1.PodList
	if err := l.Client.List(ctx, &pods, client.InNamespace(lab.OperatorNamespace),
		client.MatchingLabels{desired.LabelLoadBalancer: lb.Name, desired.LabelLoadBalancerNamespace: lb.Namespace}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.PriorityClassName != "hakeeper-dataplane" || p.Spec.Priority == nil || *p.Spec.Priority != 1000000 {
			t.Errorf("data-plane pod %s: priorityClassName %q, priority %v; want hakeeper-dataplane, 1000000", p.Name, p.Spec.PriorityClassName, p.Spec.Priority)
		}
	}
	eventually(t, 30*time.Second, "the data-plane quota counting the pods", func() error {
		quota := &corev1.ResourceQuota{}
		if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: "hakeeper-dataplane"}, quota); err != nil {
			return err
		}
		if used := quota.Status.Used[corev1.ResourcePods]; used.Value() < int64(len(pods.Items)) || len(pods.Items) == 0 {
			return fmt.Errorf("status.used.pods %s, %d pods", used.String(), len(pods.Items))
		}
		return nil
	})
	// Server names resolve as the node resolves them, not through the
	// cluster's search path for hakeeper-system, where a short name would
	// reach the operator's Services.
	if out, err := inHAProxy("cat /etc/resolv.conf"); err != nil || strings.Contains(out, lab.OperatorNamespace) || strings.Contains(out, lab.ClusterDNS) {
		t.Errorf("the data plane's resolv.conf (%v) uses the cluster's DNS or the operator's namespace:\n%s", err, out)
	}
	if pods, err := l.Pods(ctx, lab.OperatorNamespace, map[string]string{"app.kubernetes.io/component": "manager"}); err == nil && len(pods) > 0 {
		// The manager, an ordinary pod, shows what the data plane would
		// have had: the check above looks for the right thing.
		mc, err := l.PodContainers(pods[0])
		if err == nil && len(mc) > 0 {
			if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/etc/resolv.conf", mc[0].PID)); err == nil && !strings.Contains(string(data), lab.OperatorNamespace+".svc") {
				t.Errorf("the manager's resolv.conf lacks the cluster's search path, so this check proves nothing:\n%s", data)
			}
		}
	}
	// Signal every process the haproxy container can see that is
	// keepalived's: there must be none to signal.
	out, err := inHAProxy(`n=0; for d in /proc/[0-9]*; do
  [ "$(cat $d/comm 2>/dev/null)" = keepalived ] || continue
  kill -0 "${d#/proc/}" && n=$((n+1))
done; echo "signalled $n"`)
	if err != nil || out != "signalled 0" {
		t.Errorf("from the haproxy container, signalling keepalived: %v %q, want none to signal", err, out)
	}
	// keepalived runs all the while, in its own process namespace.
	if st := readStatus(t, keepalived.PID); st.uid != 0 {
		t.Errorf("keepalived's supervisor runs as %d", st.uid)
	}

	// The workers: every HAProxy process but the master (the container's
	// first process is hakeeper-supervise haproxy, HAProxy's master its child).
	workers := 0
	for _, pid := range descendants(haproxy.PID) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) != "haproxy" {
			continue
		}
		st := readStatus(t, pid)
		if st.uid == 0 {
			continue // the master
		}
		workers++
		if st.uid != contract.HAProxyWorkerUID || st.effective != 0 {
			t.Errorf("HAProxy worker %d runs as uid %d with capabilities %016x, want uid %d and none", pid, st.uid, st.effective, contract.HAProxyWorkerUID)
		}
		entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/root", pid))
		if err != nil || len(entries) != 0 {
			t.Errorf("HAProxy worker %d's root holds %d entries (%v), want its empty chroot", pid, len(entries), err)
		}
	}
	if workers == 0 {
		t.Error("no HAProxy worker found")
	}

	// The token: for 25 s (the agent's liveness probe runs every 10 s),
	// every process each daemon container can see is tried.
	const tokenPath = "/run/secrets/kubernetes.io/serviceaccount/token"
	loop := `end=$(($(date +%s)+25)); tries=0; while [ $(date +%s) -lt $end ]; do
  for d in /proc/[0-9]*; do cat "$d/root` + tokenPath + `" >/dev/null 2>&1 && echo "LEAK from ${d#/proc/}"; done
  tries=$((tries+1))
done; echo "tries $tries"`
	var wg sync.WaitGroup
	for _, c := range []lab.RunningContainer{haproxy, keepalived} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := l.Exec(ctx, node, c, "sh", "-c", loop)
			text := strings.TrimSpace(string(out))
			if err != nil || strings.Contains(text, "LEAK") || !strings.HasPrefix(lastLine(text), "tries ") {
				t.Errorf("reading the agent's token from the %s container: %v\n%s", c.Name, err, text)
				return
			}
			tries, _ := strconv.Atoi(strings.TrimPrefix(lastLine(text), "tries "))
			t.Logf("the %s container tried every process's root %d times in 25 s: no token", c.Name, tries)
		}()
	}
	wg.Wait()
	// The token is there to be read, by the agent: the loop above would
	// have found it through a process that shows it.
	agent := container(desired.ContainerAgent)
	if out, err := l.Exec(ctx, node, agent, "sh", "-c", "test -s "+tokenPath+" && echo present"); err != nil || strings.TrimSpace(string(out)) != "present" {
		t.Errorf("the agent's own token: %v %q", err, out)
	}
}

func lastLine(s string) string {
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}
