// Command idle measures what an idle LoadBalancer costs each node of a
// lab cluster (three real nodes: kubelets, containerd, kube-proxy, the
// built images): 1, 5 and 10 LoadBalancers of one HTTP listener and two
// health-checked servers, each measured over a window after settling.
// Per LoadBalancer per node it prints
//   - CPU inside the data-plane pod (its cgroup's cpuacct), and outside it
//     over the baseline without LoadBalancers: the kubelet, containerd, its
//     shims (with the runc and probe processes they reaped) and kube-proxy;
//   - private memory of the pod's processes (smaps_rollup), of its shim,
//     and the kubelet's and containerd's growth over the baseline; and the
//     pod's anonymous memory (Pss_Anon), by process too: private memory
//     counts a binary's pages while only one process on the node maps
//     them, anonymous memory is what no other LoadBalancer can share;
//   - the pod's processes and threads;
//   - keepalived's VRRP process CPU, whose slope in the number of
//     LoadBalancers shows what each pays for the others' adverts;
//
// and extrapolates to 100 LoadBalancers per node.
//
//	make bench-idle COUNTS=1,5,10 WINDOW=20s
package main

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

func main() {
	lab.MaybeRunBackend()
	countsFlag := flag.String("counts", "1,5,10", "numbers of LoadBalancers to measure, increasing")
	window := flag.Duration("window", 20*time.Second, "measuring window")
	settle := flag.Duration("settle", 15*time.Second, "wait after every LoadBalancer is Ready")
	flag.StringVar(&multicastGroups, "groups", "239.255.18.0/24", "the class's block of VRRP multicast groups, one per router ID (empty: every LoadBalancer on 224.0.0.18)")
	flag.Parse()
	var counts []int
	for _, f := range strings.Split(*countsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || (len(counts) > 0 && n <= counts[len(counts)-1]) {
			fmt.Fprintln(os.Stderr, "bench idle: -counts must be increasing positive numbers")
			os.Exit(2)
		}
		counts = append(counts, n)
	}
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, counts, *window, *settle)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench idle:", err)
		os.Exit(1)
	}
}

const nodes = 3

// runtimeProcesses are the node's own programs that a pod costs work to:
// the kubelet (probes, status), containerd and its shims (exec probes run
// through them, with runc), and kube-proxy. /proc truncates comm to 15
// characters.
var runtimeProcesses = []string{"kubelet", "containerd", "containerd-shim", "runc", "kube-proxy"}

func run(ctx context.Context, counts []int, window, settle time.Duration) error {
	root, err := cpuacctRoot()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "hakeeper-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := lab.Start(ctx, lab.Config{Nodes: nodes, Backends: 2, Dir: dir,
		NodeLabels: map[string]string{"hakeeper.io/edge": "true"}})
	if err != nil {
		return err
	}
	defer l.Close()
	m := &meter{l: l, root: root, netns: map[uint64]string{}}
	for i := range nodes {
		path, err := l.NodeNetNS(lab.NodeName(i))
		if err != nil {
			return err
		}
		ino, err := inode(path)
		if err != nil {
			return err
		}
		m.netns[ino] = lab.NodeName(i)
	}

	if err := createClass(ctx, l); err != nil {
		return err
	}
	groups := "every LoadBalancer's adverts on 224.0.0.18"
	if multicastGroups != "" {
		groups = "a VRRP group per LoadBalancer from " + multicastGroups
	}
	fmt.Printf("hakeeper idle cost: %d real nodes, %v windows after %v settling, LoadBalancers of one HTTP listener and two health-checked servers, %s\n",
		nodes, window, settle, groups)
	time.Sleep(settle)
	base, err := m.measure(ctx, window)
	if err != nil {
		return err
	}
	fmt.Printf("baseline (no LoadBalancer): kubelet, containerd, shims, kube-proxy %.2f%% of a core per node, %.1f MiB private per node\n",
		100*base.runtimeCPU/nodes, mib(base.runtimeMemory)/nodes)
	fmt.Printf("\n%4s  %-28s  %-30s  %-15s  %s\n", "LBs", "CPU % of a core (pod+runtime)", "private MiB (pod+shim+runtime)", "procs/threads", "keepalived VRRP process %")
	var results []result
	created := 0
	for _, n := range counts {
		for ; created < n; created++ {
			if err := l.Client.Create(ctx, idleLoadBalancer(created)); err != nil {
				return err
			}
		}
		if err := waitReady(ctx, l, n, 5*time.Minute); err != nil {
			return err
		}
		time.Sleep(settle)
		s, err := m.measure(ctx, window)
		if err != nil {
			return err
		}
		r := perLoadBalancer(n, base, s)
		results = append(results, r)
		fmt.Printf("%4d  %5.2f = %5.2f + %5.2f          %5.1f = %4.1f + %3.1f + %4.1f         %4.1f / %5.1f    %.2f\n",
			n, 100*(r.podCPU+r.runtimeCPU), 100*r.podCPU, 100*r.runtimeCPU,
			r.podMiB+r.shimMiB+r.runtimeMiB, r.podMiB, r.shimMiB, r.runtimeMiB, r.processes, r.threads, 100*r.keepalivedCPU)
	}
	fmt.Printf("\nCPU %% of a core by container (median pod):\n")
	for _, r := range results {
		names := slices.Sorted(maps.Keys(r.containers))
		parts := make([]string, len(names))
		for i, name := range names {
			parts[i] = fmt.Sprintf("%s %.2f", name, 100*r.containers[name])
		}
		fmt.Printf("%4d  %s\n", r.n, strings.Join(parts, ", "))
	}
	fmt.Printf("\nmemory MiB by process, private / anonymous (median pod; anonymous is what no other LoadBalancer shares):\n")
	for _, r := range results {
		names := slices.Sorted(maps.Keys(r.byProcess))
		parts := make([]string, len(names))
		for i, name := range names {
			parts[i] = fmt.Sprintf("%s %.1f / %.1f", name, r.byProcess[name][0], r.byProcess[name][1])
		}
		fmt.Printf("%4d  pod %.1f / %.1f: %s\n", r.n, r.podMiB, r.podAnonMiB, strings.Join(parts, ", "))
	}
	last := results[len(results)-1]
	fmt.Printf("\nat 100 LoadBalancers per node (from %d): %.1f cores, %.1f GiB private memory, %.0f processes\n",
		last.n, 100*(last.podCPU+last.runtimeCPU), 100*(last.podMiB+last.shimMiB+last.runtimeMiB)/1024, 100*last.processes)
	if len(results) > 1 {
		fmt.Printf("keepalived VRRP process: %+.3f%% of a core per LoadBalancer added on the node (least squares over %d points)\n",
			100*slope(results), len(results))
	}
	return nil
}

// benchClass is the lab's class, with the class's block of VRRP groups
// when -groups gives one. The data plane keeps its default requests (50m a
// pod: ten fit a two-core lab node, where 210m stopped at nine).
const benchClass = "idle"

// multicastGroups is the bench class's spec.vrrp.multicastGroups.ipv4.
var multicastGroups string

func createClass(ctx context.Context, l *lab.Lab) error {
	labClass := &v1alpha1.LoadBalancerClass{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: lab.ClassName}, labClass); err != nil {
		return err
	}
	class := &v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: benchClass}, Spec: *labClass.Spec.DeepCopy()}
	if multicastGroups != "" {
		class.Spec.VRRP.MulticastGroups = &v1alpha1.VRRPMulticastGroups{IPv4: multicastGroups}
	}
	return l.Client.Create(ctx, class)
}

// idleLoadBalancer is the i-th LoadBalancer: an address from the lab's
// pool, one HTTP listener, two servers checked every 2 s (the default).
func idleLoadBalancer(i int) *v1alpha1.LoadBalancer {
	return &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("idle-%02d", i), Namespace: "default"},
		Spec: v1alpha1.LoadBalancerSpec{
			ClassName: benchClass,
			// The sandbox caps open files at 20000; HAProxy's default needs
			// twice the connections it allows.
			HAProxy:   v1alpha1.HAProxySpec{MaxConnections: ptr.To(int32(4000))},
			Listeners: []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends: []v1alpha1.Backend{{Name: "web",
				HealthCheck: &v1alpha1.HealthCheck{Type: v1alpha1.HealthCheckHTTP, Path: "/healthz"},
				Servers: []v1alpha1.Server{
					{Name: "b1", Address: lab.BackendAddr(0), Port: lab.BackendPort},
					{Name: "b2", Address: lab.BackendAddr(1), Port: lab.BackendPort},
				}}},
		},
	}
}

func waitReady(ctx context.Context, l *lab.Lab, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var list v1alpha1.LoadBalancerList
		if err := l.Client.List(ctx, &list, client.InNamespace("default")); err != nil {
			return err
		}
		ready := 0
		for _, lb := range list.Items {
			if meta.IsStatusConditionTrue(lb.Status.Conditions, v1alpha1.LoadBalancerReadyCondition) && len(lb.Status.Nodes) == nodes {
				ready++
			}
		}
		if ready == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d LoadBalancers Ready after %v", ready, n, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// meter reads the nodes' costs.
type meter struct {
	l     *lab.Lab
	root  string            // cpuacct hierarchy
	netns map[uint64]string // node network namespaces
}

// pod is one data-plane pod's readings.
type pod struct {
	cgroup     string
	cpu        float64            // cgroup CPU seconds
	keepalived map[int]float64    // keepalived processes' CPU seconds
	containers map[string]float64 // each container's cgroup CPU seconds, by name
	memory     int64
	anon       int64
	// byProcess is private and anonymous memory by process name.
	byProcess map[string][2]int64
	processes int
	threads   int
}

// snapshot is everything read at one instant.
type snapshot struct {
	at      time.Time
	pods    map[string]*pod // by pod name
	runtime map[int]process // node runtime processes by pid
}

func (m *meter) snapshot(ctx context.Context) (*snapshot, error) {
	s := &snapshot{at: time.Now(), pods: map[string]*pod{}, runtime: map[int]process{}}
	var list corev1.PodList
	if err := m.l.Client.List(ctx, &list, client.InNamespace(lab.OperatorNamespace), client.HasLabels{desired.LabelLoadBalancer}); err != nil {
		return nil, err
	}
	for _, p := range list.Items {
		containers, err := m.l.PodContainers(p)
		if err != nil || len(containers) == 0 {
			continue
		}
		container, ok := readProcess(containers[0].PID)
		if !ok {
			continue
		}
		d := &pod{cgroup: filepath.Dir(container.cgroup), keepalived: map[int]float64{}, containers: map[string]float64{},
			byProcess: map[string][2]int64{}}
		if d.cpu, err = cgroupCPU(m.root, d.cgroup); err != nil {
			return nil, fmt.Errorf("pod %s: %w", p.Name, err)
		}
		for _, c := range containers {
			if pr, ok := readProcess(c.PID); ok {
				if cpu, err := cgroupCPU(m.root, pr.cgroup); err == nil {
					d.containers[c.Name] = cpu
				}
			}
		}
		pids, threads := cgroupTasks(m.root, d.cgroup)
		d.processes, d.threads = len(pids), threads
		for _, pid := range pids {
			private, anon := memoryOf(pid)
			d.memory, d.anon = d.memory+private, d.anon+anon
			pr, ok := readProcess(pid)
			if !ok {
				continue
			}
			m := d.byProcess[pr.comm]
			d.byProcess[pr.comm] = [2]int64{m[0] + private, m[1] + anon}
			if pr.comm == "keepalived" {
				d.keepalived[pid] = pr.cpu
			}
		}
		s.pods[p.Name] = d
	}
	for _, p := range allProcesses() {
		if _, onNode := m.netns[p.netns]; !onNode || strings.Contains(p.cgroup, "/kubepods") {
			continue
		}
		if slices.ContainsFunc(runtimeProcesses, func(name string) bool { return strings.HasPrefix(p.comm, name) }) {
			s.runtime[p.pid] = p
		}
	}
	return s, nil
}

// sample is a window's rates.
type sample struct {
	pods          int
	podCPU        float64 // cores, all pods
	runtimeCPU    float64 // cores, all nodes' runtime processes
	podMemory     int64   // bytes, all pods
	podAnon       int64   // bytes, all pods
	shimMemory    int64   // bytes, all shims
	runtimeMemory int64   // bytes, kubelets, containerds and kube-proxies
	processes     int
	threads       int
	keepalived    []float64             // each pod's busiest keepalived process, cores
	containers    map[string][]float64  // each pod's containers, cores, by name
	byProcess     map[string][][2]int64 // each pod's memory by process name
}

func (m *meter) measure(ctx context.Context, window time.Duration) (sample, error) {
	a, err := m.snapshot(ctx)
	if err != nil {
		return sample{}, err
	}
	select {
	case <-ctx.Done():
		return sample{}, ctx.Err()
	case <-time.After(window):
	}
	b, err := m.snapshot(ctx)
	if err != nil {
		return sample{}, err
	}
	secs := b.at.Sub(a.at).Seconds()
	s := sample{containers: map[string][]float64{}, byProcess: map[string][][2]int64{}}
	for name, pb := range b.pods {
		pa, ok := a.pods[name]
		if !ok {
			return sample{}, fmt.Errorf("pod %s appeared during the window", name)
		}
		s.pods++
		s.podCPU += (pb.cpu - pa.cpu) / secs
		s.podMemory += pb.memory
		s.podAnon += pb.anon
		for name, m := range pb.byProcess {
			s.byProcess[name] = append(s.byProcess[name], m)
		}
		s.processes += pb.processes
		s.threads += pb.threads
		busiest := 0.0
		for pid, cpu := range pb.keepalived {
			if before, ok := pa.keepalived[pid]; ok {
				busiest = max(busiest, (cpu-before)/secs)
			}
		}
		s.keepalived = append(s.keepalived, busiest)
		for name, cpu := range pb.containers {
			if before, ok := pa.containers[name]; ok {
				s.containers[name] = append(s.containers[name], (cpu-before)/secs)
			}
		}
	}
	for pid, pb := range b.runtime {
		pa, ok := a.runtime[pid]
		if !ok {
			continue // started during the window: not idle cost
		}
		s.runtimeCPU += (pb.cpu - pa.cpu) / secs
		if strings.HasPrefix(pb.comm, "containerd-shim") {
			s.shimMemory += privateMemory(pid)
		} else if pb.comm != "runc" {
			s.runtimeMemory += privateMemory(pid)
		}
	}
	return s, nil
}

// result is one count's cost per LoadBalancer per node.
type result struct {
	n                                 int
	podCPU, runtimeCPU                float64 // cores
	podMiB, shimMiB, runtimeMiB       float64
	podAnonMiB                        float64
	byProcess                         map[string][2]float64 // median pod's, MiB private and anonymous
	processes, threads, keepalivedCPU float64
	containers                        map[string]float64 // median pod's, cores
}

func perLoadBalancer(n int, base, s sample) result {
	pods := float64(max(s.pods, 1))
	per := float64(n * nodes)
	slices.Sort(s.keepalived)
	r := result{n: n,
		podCPU:     s.podCPU / pods,
		runtimeCPU: (s.runtimeCPU - base.runtimeCPU) / per,
		podMiB:     mib(s.podMemory) / pods,
		podAnonMiB: mib(s.podAnon) / pods,
		shimMiB:    mib(s.shimMemory-base.shimMemory) / per,
		runtimeMiB: mib(s.runtimeMemory-base.runtimeMemory) / per,
		processes:  float64(s.processes) / pods,
		threads:    float64(s.threads) / pods,
	}
	if len(s.keepalived) > 0 {
		r.keepalivedCPU = s.keepalived[len(s.keepalived)/2]
	}
	r.containers = map[string]float64{}
	for name, v := range s.containers {
		slices.Sort(v)
		r.containers[name] = v[len(v)/2]
	}
	r.byProcess = map[string][2]float64{}
	for name, v := range s.byProcess {
		slices.SortFunc(v, func(a, b [2]int64) int { return int(a[0] - b[0]) })
		m := v[len(v)/2]
		r.byProcess[name] = [2]float64{mib(m[0]), mib(m[1])}
	}
	return r
}

// slope is the least-squares slope of keepalived's CPU in the number of
// LoadBalancers.
func slope(rs []result) float64 {
	var sx, sy, sxx, sxy float64
	for _, r := range rs {
		x := float64(r.n)
		sx, sy, sxx, sxy = sx+x, sy+r.keepalivedCPU, sxx+x*x, sxy+x*r.keepalivedCPU
	}
	n := float64(len(rs))
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
