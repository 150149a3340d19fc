// Command demo is `make demo`: a real two-node cluster (kube-apiserver,
// controller-manager, scheduler; containerd and a kubelet per node),
// hakeeper installed from the manifest `make build-installer` writes for
// the images `make images` built, a LoadBalancer serving through its
// virtual IP, and one failover with the outage a client saw. It cleans up on exit and on
// Ctrl-C. On a terminal it waits for Ctrl-C before cleaning up, unless
// -unattended (or no terminal, as in CI).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/term"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

func main() {
	lab.MaybeRunBackend()
	unattended := flag.Bool("unattended", !term.IsTerminal(int(os.Stdin.Fd())), "finish without waiting for Ctrl-C")
	flag.Parse()
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *unattended)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

const vip = lab.Prefix + "100"

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

func run(ctx context.Context, unattended bool) error {
	dir, err := os.MkdirTemp("", "hakeeper-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	step("Starting a cluster: control plane, two nodes with containerd and a kubelet each (network namespaces on a bridge, 198.18.0.0/24); installing hakeeper from the manifest make build-installer writes (config/default with the built images)")
	start := time.Now()
	l, err := lab.Start(ctx, lab.Config{Nodes: 2, Backends: 2, Dir: dir,
		NodeLabels: map[string]string{"hakeeper.io/edge": "true"}})
	if err != nil {
		if l != nil {
			fmt.Fprintf(os.Stderr, "demo: logs of every process were in %s\n", dir)
		}
		return err
	}
	defer func() { step("Cleaning up"); l.Close() }()
	fmt.Printf("    cluster up and hakeeper installed in %.1f s\n", time.Since(start).Seconds())
	kubeconfig := l.AdminKubeconfig
	kubectl(kubeconfig, "get", "nodes", "-o", "wide")
	kubectl(kubeconfig, "get", "pods", "-n", lab.OperatorNamespace, "-o", "wide")

	lb := demoLoadBalancer()
	step("Applying LoadBalancer %s: VIP %s, backends %s and %s", lb.Name, vip, lab.BackendAddr(0), lab.BackendAddr(1))
	if err := l.Client.Create(ctx, lb); err != nil {
		return err
	}
	if err := l.WaitActive(ctx, lb, lab.NodeName(0), 90*time.Second); err != nil {
		return err
	}
	step("The admin's LoadBalancerClass; the data plane's pods, in the operator's namespace; the LoadBalancer")
	kubectl(kubeconfig, "get", "loadbalancerclasses")
	kubectl(kubeconfig, "get", "pods", "-n", lab.OperatorNamespace, "-o", "wide")
	kubectl(kubeconfig, "get", "loadbalancers", "-o", "wide")
	kubectl(kubeconfig, "get", "loadbalancer", lb.Name, "-o", "jsonpath={range .status.nodes[*]}{.name}{\"\\t\"}{.role}{\"\\tpriority \"}{.priority}{\"\\n\"}{end}")

	c := l.NewClient(time.Second)
	step("Six requests to http://%s/ from the client namespace", vip)
	for range 6 {
		body, err := c.Get(ctx, "http://"+vip+"/", "")
		if err != nil {
			return err
		}
		fmt.Print("    ", body)
	}

	step("Failover: killing HAProxy on %s while the client probes the VIP every 10 ms", lab.NodeName(0))
	probe := lab.NewProbeClient(l).StartProbe("http://"+vip+"/", 10*time.Millisecond, 30*time.Second)
	time.Sleep(500 * time.Millisecond)
	if err := l.Kill(lab.NodeName(0), lb, "haproxy"); err != nil {
		return err
	}
	if err := l.WaitActive(ctx, lb, lab.NodeName(1), 90*time.Second); err != nil {
		return err
	}
	for deadline := time.Now().Add(20 * time.Second); probe.Streak() < 100 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	outage, ok, failed := probe.Stop()
	fmt.Printf("    %s took over; the client saw an outage of %.3f s (%d requests answered, %d failed)\n", lab.NodeName(1), outage.Seconds(), ok, failed)
	kubectl(kubeconfig, "get", "loadbalancers")
	step("Recovery: %s's kubelet restarts HAProxy; %s takes the VIP back once healthy for the preempt delay (5 s)", lab.NodeName(0), lab.NodeName(0))
	if err := l.WaitActive(ctx, lb, lab.NodeName(0), 90*time.Second); err != nil {
		return err
	}
	kubectl(kubeconfig, "get", "loadbalancers")
	step("What kubectl events tells of it: each move of the VIP, with its cause")
	time.Sleep(time.Second) // the take-back's event follows the status that shows it
	kubectl(kubeconfig, "events", "--for", "loadbalancer/"+lb.Name, "-n", lb.Namespace)
	if !unattended {
		step("The lab keeps running; press Ctrl-C to clean up (admin kubeconfig: %s)", kubeconfig)
		<-ctx.Done()
	}
	return nil
}

func demoLoadBalancer() *v1alpha1.LoadBalancer {
	return &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: "demo", Namespace: "default"},
		Spec: v1alpha1.LoadBalancerSpec{
			// The lab's admin-owned class "lab" (the default) holds the pool
			// this address comes from and places the data plane on the
			// edge nodes.
			VirtualIPs: []string{vip},
			// The preempt delay keeps a recovered node a backup until it has
			// been healthy for 5 s (it never slows a failover), so status
			// shows the failover before the VIP moves back.
			VRRP: v1alpha1.VRRPSpec{Priorities: []v1alpha1.NodePriority{{Node: lab.NodeName(0), Priority: 150}},
				PreemptDelaySeconds: ptr.To(int32(5))},
			HAProxy:   v1alpha1.HAProxySpec{MaxConnections: ptr.To(int32(4000))},
			Listeners: []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends: []v1alpha1.Backend{{
				Name:        "web",
				HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Path: "/healthz", IntervalMilliseconds: ptr.To(int32(500))},
				Servers: []v1alpha1.Server{
					{Name: "web-1", Address: lab.BackendAddr(0), Port: lab.BackendPort},
					{Name: "web-2", Address: lab.BackendAddr(1), Port: lab.BackendPort},
				},
			}},
		},
	}
}

func kubectl(kubeconfig string, args ...string) {
	cmd := exec.Command(filepath.Join(testenv.RepoRoot(), "bin", "k8s", "kubectl"), append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	_ = cmd.Run()
	fmt.Println()
}
