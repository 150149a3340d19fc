package e2e

import (
	"bufio"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// metricsBasePort is the chart's (and config/manager's) default
// --dataplane-metrics-base-port.
const metricsBasePort = 9800

// TestMetrics scrapes every endpoint as Prometheus would: each agent's
// /metrics and /metrics/haproxy on its node's address, from outside the
// cluster, and the manager's through `kubectl port-forward`. Only a
// ServiceAccount bound to hakeeper-metrics-reader gets figures; nothing
// listens on the virtual IP; and a failover shows in the figures.
func TestMetrics(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	live := &v1alpha1.LoadBalancer{}
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), live); err != nil {
		t.Fatal(err)
	}
	port := metricsBasePort + int(live.Status.VirtualRouterID)
	agentURL := func(i int, path string) string { return fmt.Sprintf("https://%s:%d%s", lab.NodeAddr(i), port, path) }
	reader, nosy := metricsTokens(t, l)

	// Who may scrape: only the reader; a token the API server does not
	// know, or one without the ClusterRole, gets nothing.
	for _, path := range []string{"/metrics", "/metrics/haproxy"} {
		for _, tc := range []struct {
			who, token string
			want       []int
		}{
			{"no token", "", []int{401}},
			// controller-runtime's filter answers 500 when the TokenReview
			// itself reports an error, as it does for a malformed token.
			{"an unknown token", "not-a-token", []int{401, 500}},
			{"a ServiceAccount without hakeeper-metrics-reader", nosy, []int{403}},
			{"the reader", reader, []int{200}},
		} {
			code, body, err := l.Scrape(ctx, agentURL(0, path), tc.token)
			if err != nil || !slices.Contains(tc.want, code) {
				t.Errorf("%s with %s: %d %v (%.200s), want %v", path, tc.who, code, err, body, tc.want)
			}
			if code == 200 && tc.want[0] != 200 {
				t.Errorf("%s gave figures to %s", path, tc.who)
			}
		}
	}
	// The agents bind the node's address only.
	if _, _, err := l.Scrape(ctx, fmt.Sprintf("https://%s:%d/metrics", vip, port), reader); err == nil {
		t.Errorf("something answers on the virtual IP %s at the metrics port %d", vip, port)
	}

	// Each node's agent: its VRRP state, the config it runs (the hash
	// status shows), HAProxy healthy, and servers up per backend. Earlier
	// scenarios may have just moved the VIP or changed web, so each node's
	// figures get time to settle: what must hold is that they agree with
	// status once it has.
	for i := range 3 {
		self := fmt.Sprintf(`loadbalancer="web",loadbalancer_namespace="default",node="%s"`, lab.NodeName(i))
		state := "backup"
		if i == 0 {
			state = "master"
		}
		eventually(t, 30*time.Second, lab.NodeName(i)+"'s agent figures", func() error {
			now := &v1alpha1.LoadBalancer{}
			if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), now); err != nil {
				return err
			}
			hash := ""
			for _, n := range now.Status.Nodes {
				if n.Name == lab.NodeName(i) {
					hash = n.ConfigHash
				}
			}
			code, body, err := l.Scrape(ctx, agentURL(i, "/metrics"), reader)
			if err != nil || code != 200 {
				return fmt.Errorf("scraping: %d %v", code, err)
			}
			for _, want := range []string{
				`hakeeper_agent_vrrp_state{` + self + `,state="` + state + `"} 1`,
				`hakeeper_agent_config_info{hash="` + hash + `",` + self + `} 1`,
				`hakeeper_agent_tracked_file{file="health",` + self + `} 0`,
				`hakeeper_agent_backend_servers_up{backend="web",` + self + `} 2`,
				`hakeeper_agent_config_rejections_total{daemon="haproxy",` + self + `} 0`,
			} {
				if !strings.Contains(body, want+"\n") {
					return fmt.Errorf("lacks %s", want)
				}
			}
			return nil
		})
	}
	scrapeAgent := func(i int) string {
		t.Helper()
		code, body, err := l.Scrape(ctx, agentURL(i, "/metrics"), reader)
		if err != nil || code != 200 {
			t.Fatalf("scraping %s's agent: %d %v", lab.NodeName(i), code, err)
		}
		return body
	}
	// HAProxy's own exporter, through the agent.
	code, body, err := l.Scrape(ctx, agentURL(0, "/metrics/haproxy"), reader)
	if err != nil || code != 200 {
		t.Fatalf("HAProxy's exporter: %d %v", code, err)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^haproxy_backend_active_servers\{proxy="be_web"\} 2$`),
		regexp.MustCompile(`(?m)^haproxy_frontend_http_requests_total\{proxy="fe_http"\} \d+$`),
		regexp.MustCompile(`(?m)^haproxy_server_status\{proxy="be_web",server="b1",state="UP"\} 1$`),
	} {
		if !want.MatchString(body) {
			t.Errorf("HAProxy's exporter lacks %s", want)
		}
	}

	// A failover shows: HAProxy killed on the master, node-b takes the VIP
	// (its VRRP state and transitions say so), node-a counts the
	// transitions out and, preempting, back.
	before := []float64{}
	for i := range 2 {
		before = append(before, sample(t, scrapeAgent(i), "hakeeper_agent_vrrp_transitions_total"))
	}
	failover(t, l, lb, lab.NodeName(1), func() error { return l.Kill(lab.NodeName(0), lb, "haproxy") })
	eventually(t, 60*time.Second, "the failover in both agents' transitions", func() error {
		for i := range 2 {
			if got := sample(t, scrapeAgent(i), "hakeeper_agent_vrrp_transitions_total"); got < before[i]+2 {
				return fmt.Errorf("%s: %v transitions, %v before the failover", lab.NodeName(i), got, before[i])
			}
		}
		return nil
	})
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)

	// The manager's figures, from the leader (only it reconciles).
	managerURL := managerPortForward(t, l)
	eventually(t, 30*time.Second, "the manager's figures for web", func() error {
		code, body, err := lab.ScrapeLocal(ctx, managerURL, reader)
		if err != nil || code != 200 {
			return fmt.Errorf("%d %v", code, err)
		}
		for _, want := range []string{
			`hakeeper_loadbalancer_nodes{loadbalancer="web",loadbalancer_namespace="default",role="master"} 1`,
			`hakeeper_loadbalancer_status_condition{loadbalancer="web",loadbalancer_namespace="default",status="true",type="Ready"} 1`,
			`controller_runtime_reconcile_total{controller="loadbalancer",result="success"}`,
		} {
			if !strings.Contains(body, want) {
				return fmt.Errorf("no %s", want)
			}
		}
		if sample(t, body, `hakeeper_loadbalancer_reconciles_total{loadbalancer="web",loadbalancer_namespace="default",outcome="Applied"}`) < 1 {
			return fmt.Errorf("no Applied reconcile counted")
		}
		return nil
	})
	if code, _, err := lab.ScrapeLocal(ctx, managerURL, nosy); err != nil || code != 403 {
		t.Errorf("the manager gave its figures to a ServiceAccount without hakeeper-metrics-reader: %d %v", code, err)
	}
}

// metricsTokens returns tokens of two ServiceAccounts: one bound to
// hakeeper-metrics-reader, as a Prometheus would be, and one not.
func metricsTokens(t *testing.T, l *lab.Lab) (reader, nosy string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: newNamespace(t, l, "monitoring", nil)}}
	binding := &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: ns.Name + "-prometheus"},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "hakeeper-metrics-reader"},
		Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: ns.Name}}}
	if err := l.Client.Create(ctx, binding); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, binding); _ = l.Client.Delete(ctx, ns) })
	token := func(name string) string {
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}}
		if err := l.Client.Create(ctx, sa); err != nil {
			t.Fatal(err)
		}
		tr, err := l.Clientset.CoreV1().ServiceAccounts(ns.Name).CreateToken(ctx, name,
			&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return tr.Status.Token
	}
	return token("prometheus"), token("nosy")
}

// managerPortForward forwards a local port to the leading manager's
// metrics port with kubectl, for the test's duration, and returns the URL.
func managerPortForward(t *testing.T, l *lab.Lab) string {
	t.Helper()
	lease := &coordinationv1.Lease{}
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: "hakeeper.io"}, lease); err != nil {
		t.Fatal(err)
	}
	leader, _, _ := strings.Cut(ptr.Deref(lease.Spec.HolderIdentity, ""), "_")
	cmd := l.KubectlCommand(ctx, "port-forward", "-n", lab.OperatorNamespace, "pod/"+leader, ":8443")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// "Forwarding from 127.0.0.1:41234 -> 8443"
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if m := regexp.MustCompile(`^Forwarding from 127\.0\.0\.1:(\d+) ->`).FindStringSubmatch(s.Text()); m != nil {
				lines <- m[1]
				return
			}
		}
	}()
	select {
	case p := <-lines:
		return "https://127.0.0.1:" + p + "/metrics"
	case <-time.After(30 * time.Second):
		t.Fatalf("kubectl port-forward to %s did not start", leader)
	}
	return ""
}

// sample reads one series' value from an exposition; series is its name,
// or its name and labels as printed.
func sample(t *testing.T, body, series string) float64 {
	t.Helper()
	for _, line := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(line, series)
		if !ok || rest == "" || (rest[0] != ' ' && (rest[0] != '{' || strings.Contains(series, "{"))) {
			continue
		}
		fields := strings.Fields(rest)
		v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("%s: %v", line, err)
		}
		return v
	}
	t.Fatalf("no series %s in:\n%.2000s", series, body)
	return 0
}
