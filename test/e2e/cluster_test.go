package e2e

// Scenarios that only a real cluster can show: what the runtime enforces
// of the pod specs, the manager's own RBAC, PodSecurity admission, and
// faults of a node's kubelet and containerd or of a deleted pod.

import (
	"errors"
	"fmt"
	"maps"
	"math/bits"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// capabilityBits are the capabilities hakeeper's pods add, by number.
var capabilityBits = map[corev1.Capability]uint{"KILL": 5, "SETGID": 6, "SETUID": 7, "NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_CHROOT": 18}

// processStatus is what /proc/PID/status says of a container's process.
type processStatus struct {
	uid                  int
	effective, bounding  uint64
	noNewPrivs, seccompd bool
}

func readStatus(t *testing.T, pid int) processStatus {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var st processStatus
	for _, line := range strings.Split(string(data), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "Uid": // real, effective, saved, filesystem
			st.uid, _ = strconv.Atoi(strings.Fields(v)[1])
		case "CapEff":
			st.effective, _ = strconv.ParseUint(v, 16, 64)
		case "CapBnd":
			st.bounding, _ = strconv.ParseUint(v, 16, 64)
		case "NoNewPrivs":
			st.noNewPrivs = v == "1"
		case "Seccomp":
			st.seccompd = v == "2" // a filter is installed
		}
	}
	return st
}

// rootReadOnly tells whether a process's root is mounted read-only.
func rootReadOnly(t *testing.T, pid int) bool {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/" {
			return slices.Contains(strings.Split(f[5], ","), "ro")
		}
	}
	t.Fatalf("no root mount in /proc/%d/mountinfo", pid)
	return false
}

func capabilityMask(t *testing.T, caps []corev1.Capability) uint64 {
	var m uint64
	for _, c := range caps {
		bit, ok := capabilityBits[c]
		if !ok {
			t.Fatalf("capability %s: add its number to capabilityBits", c)
		}
		m |= 1 << bit
	}
	return m
}

// checkContainers compares every running container of the pods with its
// spec: user, effective and bounding capabilities, no privilege
// escalation, a seccomp filter, a read-only root.
func checkContainers(t *testing.T, l *lab.Lab, pods []corev1.Pod, wantUID func(corev1.Pod, corev1.Container) int) int {
	t.Helper()
	checked := 0
	for _, pod := range pods {
		running, err := l.PodContainers(pod)
		if err != nil {
			t.Fatal(err)
		}
		for _, spec := range append(slices.Clone(pod.Spec.InitContainers), pod.Spec.Containers...) {
			i := slices.IndexFunc(running, func(c lab.RunningContainer) bool { return c.Name == spec.Name })
			if i < 0 {
				t.Errorf("%s/%s: container %s is not running", pod.Spec.NodeName, pod.Name, spec.Name)
				continue
			}
			sc := spec.SecurityContext
			if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
				t.Errorf("%s: container %s does not drop ALL capabilities", pod.Name, spec.Name)
				continue
			}
			want := capabilityMask(t, sc.Capabilities.Add)
			st := readStatus(t, running[i].PID)
			t.Logf("%s %s/%s: uid %d, CapEff %016x, CapBnd %016x (%d capabilities), no_new_privs %v, seccomp %v",
				pod.Spec.NodeName, pod.Name, spec.Name, st.uid, st.effective, st.bounding, bits.OnesCount64(st.bounding), st.noNewPrivs, st.seccompd)
			if uid := wantUID(pod, spec); st.uid != uid {
				t.Errorf("%s: container %s runs as uid %d, want %d", pod.Name, spec.Name, st.uid, uid)
			}
			if st.bounding != want {
				t.Errorf("%s: container %s has bounding set %016x, want %016x (%v)", pod.Name, spec.Name, st.bounding, want, sc.Capabilities.Add)
			}
			// Added capabilities are effective only for uid 0 under
			// containerd 1.6 (no ambient capabilities).
			wantEff := want
			if st.uid != 0 {
				wantEff = 0
			}
			if st.effective != wantEff {
				t.Errorf("%s: container %s has effective set %016x, want %016x", pod.Name, spec.Name, st.effective, wantEff)
			}
			if sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation && !st.noNewPrivs {
				t.Errorf("%s: container %s may gain privileges (no_new_privs unset)", pod.Name, spec.Name)
			}
			if !st.seccompd {
				t.Errorf("%s: container %s runs without a seccomp filter", pod.Name, spec.Name)
			}
			if sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem && !rootReadOnly(t, running[i].PID) {
				t.Errorf("%s: container %s has a writable root filesystem", pod.Name, spec.Name)
			}
			checked++
		}
	}
	return checked
}

// readyPods waits until n pods with the labels run with every container
// ready (started, for sidecars), and returns them.
func readyPods(t *testing.T, l *lab.Lab, namespace string, labels map[string]string, n int) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, 60*time.Second, fmt.Sprintf("%d ready pods %v", n, labels), func() error {
		var err error
		if pods, err = l.Pods(ctx, namespace, labels); err != nil {
			return err
		}
		if len(pods) != n {
			return fmt.Errorf("%d pods", len(pods))
		}
		for _, p := range pods {
			for _, c := range append(slices.Clone(p.Status.InitContainerStatuses), p.Status.ContainerStatuses...) {
				if c.State.Running == nil || (c.Started != nil && !*c.Started) {
					return fmt.Errorf("%s/%s: %+v", p.Name, c.Name, c.State)
				}
			}
			if len(p.Status.ContainerStatuses) != len(p.Spec.Containers) {
				return fmt.Errorf("%s: containers not all reported", p.Name)
			}
		}
		return nil
	})
	return pods
}

// agentNotDumpable: the daemons do not share the agent's process
// namespace (TestHAProxyConfined), and the agent is undumpable as well,
// should a process ever see it: a root process without capabilities (what
// HAProxy and Keepalived are) must be refused /proc/<agent>/root; with
// them (this test) it is allowed, which shows the token is there to
// refuse.
func agentNotDumpable(t *testing.T, pod string, pid int) {
	t.Helper()
	// Debian's /var/run is a link to /run; through /proc it would resolve
	// on the host.
	token := fmt.Sprintf("/proc/%d/root/run/secrets/kubernetes.io/serviceaccount/token", pid)
	if _, err := os.ReadFile(token); err != nil {
		t.Errorf("%s: the agent's token is not where the test looks: %v", pod, err)
		return
	}
	out, err := exec.Command("setpriv", "--inh-caps=-all", "--bounding-set=-all", "--", "cat", token).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("%s: a process without capabilities read the agent's token (%v): %.40q", pod, err, out)
	}
}

// TestContainersRunAsDeclared reads each running container's user and
// capabilities from /proc/PID/status and its root mount from
// /proc/PID/mountinfo, and compares them with the pod specs: what runc
// enforces, not what the YAML says.
func TestContainersRunAsDeclared(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	ds := &appsv1.DaemonSet{}
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: desired.NamesFor(lb).DaemonSet}, ds); err != nil {
		t.Fatal(err)
	}
	pods := readyPods(t, l, lab.OperatorNamespace, ds.Spec.Selector.MatchLabels, 3)
	// The data-plane image has no USER: its processes are root with only
	// the capabilities each container adds.
	asSpec := func(pod corev1.Pod, c corev1.Container) int {
		if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
			return int(*c.SecurityContext.RunAsUser)
		}
		return 0
	}
	if n := checkContainers(t, l, pods, asSpec); n != 9 {
		t.Errorf("checked %d data-plane containers, want 9", n)
	}
	// Only the agent holds an API token: HAProxy and Keepalived parse what
	// tenants write and must have no credential to leak.
	for _, pod := range pods {
		running, err := l.PodContainers(pod)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range running {
			// From the container's mount table: its /var/run is a symlink
			// that /proc/PID/root would resolve on the host.
			mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.PID))
			if err != nil {
				t.Fatal(err)
			}
			has := strings.Contains(string(mounts), "/secrets/kubernetes.io/serviceaccount ")
			if has != (c.Name == desired.ContainerAgent) {
				t.Errorf("%s/%s: token mounted %v", pod.Name, c.Name, has)
			}
			if c.Name == desired.ContainerAgent {
				agentNotDumpable(t, pod.Name, c.PID)
			}
		}
	}
	managers := readyPods(t, l, lab.OperatorNamespace, map[string]string{"app.kubernetes.io/component": "manager"}, 2)
	// The manager image's USER is 65532 (nonroot), which the pod's
	// runAsNonRoot requires.
	nonRoot := func(corev1.Pod, corev1.Container) int { return 65532 }
	if n := checkContainers(t, l, managers, nonRoot); n == 0 {
		t.Error("no manager container checked")
	}
}

// TestManagerNeedsItsRBAC takes one permission from the manager's Role in
// the data-plane namespace (config/rbac/role.yaml, generated from the RBAC
// markers, installed by kustomize; the manager has no ConfigMap rights
// anywhere else): the manager runs under its roles alone, so a
// LoadBalancer then fails to apply, and status says why in the API
// server's words. (The first to fail is the agent's Role: RBAC lets the
// manager grant only what it holds.) With the permission back, it becomes
// Ready.
func TestManagerNeedsItsRBAC(t *testing.T) {
	l := requireLab(t)
	role := &rbacv1.Role{}
	key := client.ObjectKey{Namespace: lab.OperatorNamespace, Name: "hakeeper-manager"}
	if err := l.Client.Get(ctx, key, role); err != nil {
		t.Fatal(err)
	}
	original := role.DeepCopy()
	restore := func() {
		current := &rbacv1.Role{}
		if err := l.Client.Get(ctx, key, current); err != nil {
			t.Error(err)
			return
		}
		current.Rules = original.Rules
		if err := l.Client.Update(ctx, current); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(restore)
	// Every rule that grants patch on ConfigMaps loses it for them.
	var rules []rbacv1.PolicyRule
	for _, r := range role.Rules {
		if slices.Contains(r.APIGroups, "") && slices.Contains(r.Resources, "configmaps") && slices.Contains(r.Verbs, "patch") {
			others := slices.DeleteFunc(slices.Clone(r.Resources), func(s string) bool { return s == "configmaps" })
			if len(others) > 0 {
				kept := r.DeepCopy()
				kept.Resources = others
				rules = append(rules, *kept)
			}
			cut := r.DeepCopy()
			cut.Resources = []string{"configmaps"}
			cut.Verbs = slices.DeleteFunc(slices.Clone(r.Verbs), func(v string) bool { return v == "patch" })
			rules = append(rules, *cut)
			continue
		}
		rules = append(rules, r)
	}
	role.Rules = rules
	if err := l.Client.Update(ctx, role); err != nil {
		t.Fatal(err)
	}
	lb := variant("rbac", newVIP(t))
	if err := l.Client.Create(ctx, lb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, lb) })
	var message string
	eventually(t, 60*time.Second, "status naming the missing permission", func() error {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerProgressingCondition)
		if c == nil || c.Reason != v1alpha1.LoadBalancerReconcileErrorReason {
			return fmt.Errorf("progressing %+v", c)
		}
		message = c.Message
		// Whichever comes first: the agent's Role (which grants patch on
		// its report ConfigMap, a permission the manager must then hold
		// itself) or a ConfigMap of its own.
		for _, want := range []string{"forbidden", "configmaps", "patch"} {
			if !strings.Contains(message, want) {
				return fmt.Errorf("message %q does not say %q", message, want)
			}
		}
		return nil
	})
	t.Logf("without patch on configmaps: %s", message)
	cm := &corev1.ConfigMap{}
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: desired.NamesFor(lb).HAProxyConfigMap}, cm); err == nil {
		t.Error("the haproxy ConfigMap exists although the manager may not patch ConfigMaps")
	}
	restore()
	waitActive(t, l, lb, lab.NodeName(0), 120*time.Second)
}

// TestDataPlaneOnlyInOperatorNamespace: a tenant namespace that enforces
// the restricted PodSecurity level still gets a working LoadBalancer,
// because its privileged data plane runs in the operator's namespace (the
// only one labelled privileged); the tenant namespace holds no pod of it.
func TestDataPlaneOnlyInOperatorNamespace(t *testing.T) {
	l := requireLab(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: newNamespace(t, l, "psa-restricted", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})}}
	lb := variant("restricted", newVIP(t))
	lb.Namespace = ns.Name
	if err := l.Client.Create(ctx, lb); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, lb) })
	waitActive(t, l, lb, lab.NodeName(0), 3*time.Minute)
	pods, err := l.Pods(ctx, ns.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pods) != 0 {
		t.Errorf("the tenant namespace holds %d pods", len(pods))
	}
	operatorNS := &corev1.Namespace{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: lab.OperatorNamespace}, operatorNS); err != nil {
		t.Fatal(err)
	}
	if got := operatorNS.Labels["pod-security.kubernetes.io/enforce"]; got != "privileged" {
		t.Errorf("%s enforces %q, want privileged", lab.OperatorNamespace, got)
	}
}

// TestNodeRuntimeStopped stops the master's kubelet and containerd: the
// containers run on (their shims outlive containerd), so the VIP stays and
// serves; started again, the kubelet adopts the running containers rather
// than restarting them.
func TestNodeRuntimeStopped(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	ids := func() map[string]string {
		out := map[string]string{}
		for _, name := range []string{desired.ContainerAgent, desired.ContainerHAProxy, desired.ContainerKeepalived} {
			c, err := l.Container(lab.NodeName(0), lb, name)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = c.ID
		}
		return out
	}
	before := ids()
	// Pods earlier scenarios deleted must be gone first: a kubelet coming
	// back tears down what it missed (CNI, volumes), a burst of work on
	// two cores that is not what this scenario measures.
	eventually(t, 2*time.Minute, "no data-plane pod terminating on node-a", func() error {
		pods, err := l.Pods(ctx, lab.OperatorNamespace, nil)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.Spec.NodeName == lab.NodeName(0) && p.DeletionTimestamp != nil {
				return fmt.Errorf("%s is terminating", p.Name)
			}
		}
		return nil
	})
	// A 2 s timeout counts lost requests, not ones answered late while the
	// restarting kubelet and containerd take both cores (a fresh-clone run
	// saw one request of 1501 take over 200 ms then).
	probe := l.NewClient(2*time.Second).StartProbe("http://"+vip+"/", 10*time.Millisecond, time.Minute)
	time.Sleep(500 * time.Millisecond)
	t.Cleanup(func() { _ = l.StartRuntime(ctx, lab.NodeName(0)) })
	if err := l.StopRuntime(lab.NodeName(0)); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	for range 100 { // ten seconds without a kubelet or containerd
		if !l.HoldsVIP(lab.NodeName(0), vip) {
			probe.Stop()
			t.Fatal("node-a lost the VIP when its kubelet and containerd stopped")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := l.StartRuntime(ctx, lab.NodeName(0)); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	restarted := time.Now()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node-a's kubelet log ends:\n%s", l.NodeLog(lab.NodeName(0), "kubelet", 4000))
			t.Logf("node-a's containerd log ends:\n%s", l.NodeLog(lab.NodeName(0), "containerd", 2000))
		}
	})
	eventually(t, 60*time.Second, "node-a's kubelet back (its lease renewed)", func() error {
		lease := &coordinationv1.Lease{}
		if err := l.Client.Get(ctx, client.ObjectKey{Namespace: "kube-node-lease", Name: lab.NodeName(0)}, lease); err != nil {
			return err
		}
		if lease.Spec.RenewTime == nil || lease.Spec.RenewTime.Time.Before(restarted.Add(-time.Second)) {
			return fmt.Errorf("lease renewed at %v", lease.Spec.RenewTime)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // the kubelet's first sync of the pod
	outage, ok, failed := probe.Stop()
	t.Logf("kubelet and containerd stopped for 10 s: %d answered, %d failed, longest outage %v", ok, failed, outage)
	if failed > 0 {
		t.Errorf("%d requests failed while the node's runtime was down: %v", failed, probe.Errors())
	}
	if after := ids(); !maps.Equal(before, after) {
		t.Errorf("the kubelet restarted containers: before %v, after %v", before, after)
	}
	waitActive(t, l, lb, lab.NodeName(0), 30*time.Second)
}

// TestMasterPodDeleted deletes the master's data-plane pod, as a drain or
// `kubectl delete pod` would: keepalived stops and hands the VIP over, the
// DaemonSet controller makes a new pod, and node-a takes the VIP back.
// The outage is measured; a planned handover is the reliability work's.
func TestMasterPodDeleted(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	ds := &appsv1.DaemonSet{}
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: desired.NamesFor(lb).DaemonSet}, ds); err != nil {
		t.Fatal(err)
	}
	pods, err := l.Pods(ctx, lab.OperatorNamespace, ds.Spec.Selector.MatchLabels)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(pods, func(p corev1.Pod) bool { return p.Spec.NodeName == lab.NodeName(0) })
	if i < 0 {
		t.Fatal("no data-plane pod on node-a")
	}
	old := pods[i]
	outage := failover(t, l, lb, lab.NodeName(1), func() error { return l.Client.Delete(ctx, &old) })
	t.Logf("master pod deleted: outage %.3fs", outage.Seconds())
	eventually(t, 90*time.Second, "a new data-plane pod on node-a", func() error {
		pods, err := l.Pods(ctx, lab.OperatorNamespace, ds.Spec.Selector.MatchLabels)
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.Spec.NodeName == lab.NodeName(0) && p.UID != old.UID && p.Status.Phase == corev1.PodRunning {
				return nil
			}
		}
		return errors.New("not yet")
	})
	waitActive(t, l, lb, lab.NodeName(0), 90*time.Second)
}
