package desired

import (
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

// DataPlaneOptions are the operator's settings for every data plane.
type DataPlaneOptions struct {
	// Namespace holds every data plane: the only namespace whose pods run
	// with host networking and NET_ADMIN, and one tenants cannot write to.
	Namespace string
	// Image runs haproxy, keepalived and the agent (the Dockerfile's
	// dataplane target); a class's dataPlane.image overrides it for haproxy
	// and keepalived.
	Image           string
	ImagePullPolicy corev1.PullPolicy
	// MetricsBasePort plus the LoadBalancer's VRRP router ID is the port
	// its agents serve metrics on (0: no metrics). Router IDs are unique
	// among the LoadBalancers that share a node, so these ports are too.
	MetricsBasePort int
	// PriorityClassName of the data-plane pods (empty: none). The chart's
	// and kustomize's, hakeeper-dataplane, ranks them above tenants'
	// workloads and scopes the data plane's ResourceQuota.
	PriorityClassName string
	// ImagePullSecrets, Secrets in Namespace, let the nodes pull the
	// images from a private registry (the chart's imagePullSecrets, the
	// manager's too).
	ImagePullSecrets []string
	// HealthBasePort places the ports the kubelet probes on each node's
	// loopback: the agent's at HealthBasePort plus the router ID, HAProxy's
	// monitor MaxRouterID above (see HealthPorts). 0: exec probes instead.
	HealthBasePort int
}

// MaxRouterID is the largest VRRP router ID.
const MaxRouterID = 255

// MetricsPortName names the agent's metrics port, for PodMonitors and
// Services that select it by name (the number differs per LoadBalancer).
const MetricsPortName = "metrics"

// DataPlaneInput is what one LoadBalancer's DaemonSet is made of: the
// operator's options, the class's data-plane settings, and the node
// selector the class and the LoadBalancer give together.
type DataPlaneInput struct {
	Options      DataPlaneOptions
	Class        v1alpha1.DataPlaneSpec
	NodeSelector map[string]string
	// RouterID is the LoadBalancer's VRRP router ID.
	RouterID int32
}

// priorityClassName is the class's, or the operator's default: the pods
// that hold a class's virtual IPs may need to rank above others' (or a
// class's below the default, for a lab).
func (in DataPlaneInput) priorityClassName() string {
	if in.Class.PriorityClassName != "" {
		return in.Class.PriorityClassName
	}
	return in.Options.PriorityClassName
}

func pullSecrets(names []string) []corev1.LocalObjectReference {
	var refs []corev1.LocalObjectReference
	for _, n := range names {
		refs = append(refs, corev1.LocalObjectReference{Name: n})
	}
	return refs
}

// MetricsPort is where the agents serve metrics; 0 when they do not.
func (in DataPlaneInput) MetricsPort() int32 {
	if in.Options.MetricsBasePort == 0 || in.RouterID == 0 {
		return 0
	}
	return int32(in.Options.MetricsBasePort) + in.RouterID
}

// DefaultHealthBasePort is the manager's default HealthBasePort: its
// ports, 19001 to 19510, are clear of the kubelet's, kube-proxy's and the
// control plane's (10248 to 10259) and of the metrics ports (9801 to
// 10055 by default).
const DefaultHealthBasePort = 19000

// HealthPorts are the loopback ports the kubelet probes for a
// LoadBalancer of router ID: the agent's health server and HAProxy's
// monitor. Router IDs are unique among the LoadBalancers sharing a node,
// so these ports are too; both are 0 when base or the router ID is.
func HealthPorts(base int, routerID int32) (agent, haproxy int32) {
	if base == 0 || routerID == 0 {
		return 0, 0
	}
	return int32(base) + routerID, int32(base) + MaxRouterID + routerID
}

// layoutVersion names the contract between the rendered files, the
// container commands and the agent (paths, file names, flags). Bump it when
// that contract changes incompatibly: the pods then roll instead of
// reloading, since a running agent could not apply the new layout.
const layoutVersion = "2"

// Container names.
const (
	ContainerAgent      = "agent"
	ContainerHAProxy    = "haproxy"
	ContainerKeepalived = "keepalived"
)

// DaemonSet runs HAProxy, Keepalived and the agent on every selected node,
// on the host's network, with only the capabilities each needs.
func DaemonSet(lb *v1alpha1.LoadBalancer, in DataPlaneInput) *appsv1.DaemonSet {
	names := NamesFor(lb)
	paths := contract.DefaultPaths()
	selector := DataPlaneSelector(lb)
	podLabels := Labels(lb, ComponentDataPlane)
	template := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      podLabels,
			Annotations: map[string]string{AnnotationLayout: hashOf([]byte(layoutVersion), []byte(paths.RunDir), []byte(paths.ConfigDir))},
		},
		Spec: podSpec(lb, in, paths),
	}
	template.Annotations[AnnotationTemplate] = templateHash(template)
	return &appsv1.DaemonSet{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "DaemonSet"},
		ObjectMeta: owned(lb, in.Options.Namespace, names.DaemonSet, ComponentDataPlane),
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			// The operator replaces the pods itself (internal/rollout):
			// one node at a time, each once the last serves again, and a
			// node holding the virtual IPs last, after handing them over.
			// A RollingUpdate would delete the master's pod whenever its
			// turn came, a failover instead of a handover.
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType},
			Template:       template,
		},
	}
}

// templateHash identifies a pod template: the hash of its JSON without
// the hash annotation itself. Each pod carries its template's, so the
// operator tells pods made from an older template without reading the
// DaemonSet controller's revisions.
func templateHash(template corev1.PodTemplateSpec) string {
	t := template.DeepCopy()
	delete(t.Annotations, AnnotationTemplate)
	data, err := json.Marshal(t)
	if err != nil {
		// A PodTemplateSpec always marshals.
		panic(err)
	}
	return hashOf(data)
}

// DataPlaneSelector selects a LoadBalancer's data-plane pods: the
// DaemonSet's selector, and what the operator and the lab list them by.
func DataPlaneSelector(lb *v1alpha1.LoadBalancer) map[string]string {
	return map[string]string{LabelLoadBalancer: lb.Name, LabelLoadBalancerNamespace: lb.Namespace, LabelComponent: ComponentDataPlane}
}

// tokenVolume is the agent's API token, mounted in the agent container
// only: HAProxy and Keepalived, which parse what tenants write, never hold
// a credential.
const tokenVolume = "agent-token"

// The pod's volumes: one per set of containers that share files, so each
// daemon sees only what it uses, read-only where it only reads (see
// contract.Paths). Memory-backed where sockets, state or TLS keys live.
const (
	VolumeHAProxyConfig    = "haproxy-config"
	VolumeKeepalivedConfig = "keepalived-config"
	VolumeHAProxyRun       = "haproxy-run"
	VolumeKeepalivedRun    = "keepalived-run"
	VolumeHealth           = "health"
	VolumeTLS              = "tls"
	VolumeAgent            = "agent"
	VolumeChroot           = "haproxy-chroot"
)

func podSpec(lb *v1alpha1.LoadBalancer, in DataPlaneInput, paths contract.Paths) corev1.PodSpec {
	opts := in.Options
	memory := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}
	}
	disk := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	return corev1.PodSpec{
		HostNetwork: true,
		// The node's resolv.conf, not the cluster's: with
		// ClusterFirstWithHostNet a short server name would resolve in the
		// operator's namespace first (its search path), and tenants could
		// point a backend at the operator's Services by name.
		DNSPolicy:         corev1.DNSDefault,
		PriorityClassName: in.priorityClassName(),
		ImagePullSecrets:  pullSecrets(opts.ImagePullSecrets),
		// Each container keeps its own process namespace: HAProxy, which
		// parses traffic, can then neither signal keepalived nor read the
		// agent's token through /proc/<pid>/root of the agent or its exec
		// probes. The agent asks keepalived's supervisor to reload through
		// a socket, and watches HAProxy through its master CLI.
		ShareProcessNamespace:         ptr.To(false),
		ServiceAccountName:            NamesFor(lb).ServiceAccount,
		AutomountServiceAccountToken:  ptr.To(false),
		NodeSelector:                  in.NodeSelector,
		Tolerations:                   in.Class.Tolerations,
		TerminationGracePeriodSeconds: ptr.To(int64(30)),
		// The agent is a native sidecar: it starts first, writes the
		// configs (its startup probe waits for them), then keeps running.
		InitContainers: []corev1.Container{agentContainer(lb, opts, in.MetricsPort(), agentHealthPort(in), paths)},
		Containers:     []corev1.Container{haproxyContainer(in, paths), keepalivedContainer(in, paths)},
		Volumes: []corev1.Volume{
			disk(VolumeHAProxyConfig), disk(VolumeKeepalivedConfig),
			memory(VolumeHAProxyRun), memory(VolumeKeepalivedRun), memory(VolumeHealth), memory(VolumeTLS), memory(VolumeAgent),
			// Stays empty: HAProxy's workers chroot into it.
			disk(VolumeChroot),
			// What automountServiceAccountToken would mount, for one
			// container.
			{Name: tokenVolume, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptr.To[int32](0o444),
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr.To[int64](3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
						Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
						{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
				},
			}}},
		},
	}
}

func mount(name, at string, readOnly bool) corev1.VolumeMount {
	return corev1.VolumeMount{Name: name, MountPath: at, ReadOnly: readOnly}
}

func securityContext(caps ...corev1.Capability) *corev1.SecurityContext {
	return &corev1.SecurityContext{
		Privileged:               ptr.To(false),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: caps},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// Requests for containers whose LoadBalancer sets no resources. Without a
// CPU request a container gets the kubelet's minimum weight (cpu.shares 2):
// on real nodes, wrk saturating HAProxy through the VIP then starved
// keepalived on the master of CPU for longer than the master-down interval
// and a backup took the VIP (a false failover the lab's load scenario
// caught): keepalived asks as much CPU as HAProxy, so a saturated HAProxy
// beside it gets no more than half. The figures are what an idle
// LoadBalancer uses, with headroom (make bench-idle: about 1 % of a core
// per pod, agent, HAProxy and keepalived together), so that requests, which
// every node must hold for every LoadBalancer it runs, do not cap a node
// at a few LoadBalancers (210m a pod did: nine on two cores); a class
// whose LoadBalancers carry traffic raises haproxyResources. No limits: a
// limit would throttle HAProxy under load, or keepalived when it must act.
var (
	defaultHAProxyResources = corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}
	defaultKeepalivedResources = corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("20m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}
)

// orDefault is r unless it sets nothing.
func orDefault(r, def corev1.ResourceRequirements) corev1.ResourceRequirements {
	if len(r.Requests) == 0 && len(r.Limits) == 0 && len(r.Claims) == 0 {
		return def
	}
	return r
}

// daemonImage runs haproxy and keepalived: the class's, or the operator's.
func daemonImage(in DataPlaneInput) string {
	if in.Class.Image != "" {
		return in.Class.Image
	}
	return in.Options.Image
}

// httpProbe asks a server on the node's loopback: the data plane runs
// on the host network, so the kubelet reaches the pod's loopback servers
// there, and nothing else on the network does. The kubelet sends one
// request; no process is started in the container (an exec probe costs a
// runc exec and a process each time, on every node, per LoadBalancer).
func httpProbe(port int32, path string, period, failures int32) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Host: "127.0.0.1", Port: intstr.FromInt32(port), Path: path}},
		PeriodSeconds:    period,
		TimeoutSeconds:   5,
		FailureThreshold: failures,
	}
}

// execProbe runs command in the container: always one of hakeeper's own
// probe commands, the only exec probes the admission policy on the data
// plane lets the manager write. Its timeout is the kubelet's
// for the whole exec (runtime, runc, process start) and longer than the
// probes' own timeouts (hakeeper probe haproxy waits 2 s for HAProxy): on
// a busy node the exec itself takes seconds, and that must not count as
// a HAProxy that does not answer.
func execProbe(period, failures int32, command ...string) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: command}},
		PeriodSeconds:    period,
		TimeoutSeconds:   5,
		FailureThreshold: failures,
	}
}

func agentContainer(lb *v1alpha1.LoadBalancer, opts DataPlaneOptions, metricsPort, healthPort int32, paths contract.Paths) corev1.Container {
	fieldEnv := func(name, fieldPath string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: fieldPath}}}
	}
	command := []string{contract.Binary, "agent", "--run-dir=" + paths.RunDir, "--config-dir=" + paths.ConfigDir}
	var ports []corev1.ContainerPort
	// A hung agent stops beating: the kubelet gives up on it within about
	// 30 s and kills it after the pod's grace (it then resumes without
	// moving the VIPs). HAProxy's death does not wait for it
	// (hakeeper-supervise haproxy).
	startup := execProbe(1, 600, contract.Binary, "probe", "files", paths.HAProxyConfig(), paths.KeepalivedConfig(), paths.VRRPPeers())
	liveness := execProbe(10, 3, contract.Binary, "probe", "agent", "--heartbeat="+paths.Heartbeat(), "--max-age=5s")
	if healthPort != 0 {
		command = append(command, fmt.Sprintf("--health-port=%d", healthPort))
		startup = httpProbe(healthPort, contract.AgentStartedPath, 1, 600)
		liveness = httpProbe(healthPort, contract.AgentAlivePath, 10, 3)
	}
	if metricsPort != 0 {
		command = append(command, fmt.Sprintf("--metrics-port=%d", metricsPort))
		// Declared, so the scheduler refuses a pod whose port another
		// pod on the node holds, and scrapers find it by name.
		ports = []corev1.ContainerPort{{Name: MetricsPortName, ContainerPort: metricsPort, HostPort: metricsPort, Protocol: corev1.ProtocolTCP}}
	}
	return corev1.Container{
		Name:            ContainerAgent,
		Image:           opts.Image,
		ImagePullPolicy: opts.ImagePullPolicy,
		Command:         command,
		Ports:           ports,
		Env: []corev1.EnvVar{
			fieldEnv(contract.EnvNodeName, "spec.nodeName"),
			fieldEnv(contract.EnvPodName, "metadata.name"),
			fieldEnv(contract.EnvPodNamespace, "metadata.namespace"),
			fieldEnv(contract.EnvHostIP, "status.hostIP"),
			{Name: contract.EnvLoadBalancer, Value: lb.Name},
			{Name: contract.EnvLoadBalancerNamespace, Value: lb.Namespace},
		},
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		StartupProbe:  startup,
		LivenessProbe: liveness,
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
		},
		// The agent writes every file the daemons read.
		VolumeMounts: []corev1.VolumeMount{
			mount(VolumeHAProxyConfig, paths.HAProxyConfigDir(), false),
			mount(VolumeKeepalivedConfig, paths.KeepalivedConfigDir(), false),
			mount(VolumeHAProxyRun, paths.HAProxyRun(), false),
			mount(VolumeKeepalivedRun, paths.KeepalivedRun(), false),
			mount(VolumeHealth, paths.Health(), false),
			mount(VolumeTLS, paths.TLS(), false),
			mount(VolumeAgent, paths.Agent(), false),
			mount(tokenVolume, "/var/run/secrets/kubernetes.io/serviceaccount", true),
		},
		SecurityContext: securityContext(),
	}
}

func haproxyContainer(in DataPlaneInput, paths contract.Paths) corev1.Container {
	return corev1.Container{
		Name:            ContainerHAProxy,
		Image:           daemonImage(in),
		ImagePullPolicy: in.Options.ImagePullPolicy,
		// -W master-worker, -db stay in the foreground; the master CLI
		// socket is only reachable inside the pod's volume.
		// Its supervisor sets keepalived's tracked file the moment
		// HAProxy's master exits, so the node gives up the VIPs even if the
		// agent is dead or hung.
		Command: []string{contract.SupervisorBinary, "haproxy", "--track-file=" + paths.TrackFile(), "--",
			"haproxy", "-W", "-db",
			"-S", paths.MasterSocket() + ",mode,600",
			"-f", paths.HAProxyConfig()},
		LivenessProbe: haproxyLiveness(in, paths),
		Resources:     orDefault(in.Class.HAProxyResources, defaultHAProxyResources),
		// Its config and certificates read-only; its sockets and the one
		// tracked file its supervisor sets writable. Nothing of
		// keepalived's.
		VolumeMounts: []corev1.VolumeMount{
			mount(VolumeHAProxyConfig, paths.HAProxyConfigDir(), true),
			mount(VolumeTLS, paths.TLS(), true),
			mount(VolumeHAProxyRun, paths.HAProxyRun(), false),
			mount(VolumeHealth, paths.Health(), false),
			mount(VolumeChroot, contract.HAProxyChroot, true),
		},
		// The master, root, binds ports below 1024 (NET_BIND_SERVICE) and
		// starts each worker, which chroots into an empty directory
		// (SYS_CHROOT) and drops to an unprivileged user (SETUID, SETGID)
		// before it reads a byte of traffic. KILL: the master tells the old
		// workers to stop after a reload, and they run as another user
		// (without it they never stopped and kept answering the runtime
		// API, TestHitlessChanges); the container's process namespace
		// holds nothing else to signal. The virtual IPs a backup does not
		// hold are bound with transparent, whose IP_FREEBIND fallback
		// needs no capability.
		SecurityContext: securityContext("NET_BIND_SERVICE", "SETUID", "SETGID", "SYS_CHROOT", "KILL"),
	}
}

// haproxyLiveness restarts a HAProxy that stops answering: its monitor
// frontend on the loopback, served by the worker as any listener is.
func haproxyLiveness(in DataPlaneInput, paths contract.Paths) *corev1.Probe {
	if _, port := HealthPorts(in.Options.HealthBasePort, in.RouterID); port != 0 {
		return httpProbe(port, contract.HAProxyMonitorPath, 10, 3)
	}
	return execProbe(10, 3, contract.Binary, "probe", "haproxy", "--socket="+paths.RuntimeSocket())
}

func keepalivedContainer(in DataPlaneInput, paths contract.Paths) corev1.Container {
	return corev1.Container{
		Name:            ContainerKeepalived,
		Image:           daemonImage(in),
		ImagePullPolicy: in.Options.ImagePullPolicy,
		// Several LoadBalancers may share a node: every pid file lives in
		// this pod's own run directory. Its supervisor removes the
		// virtual IPs whenever keepalived is not running (killed, crashed,
		// or killed with its container and now restarting), which
		// keepalived cannot do for itself; it also keeps this router ID's
		// VRRP filter (adverts only from the peers) and reloads keepalived
		// when the agent asks.
		Command: []string{contract.SupervisorBinary, "keepalived",
			"--config=" + paths.KeepalivedConfig(), "--peers=" + paths.VRRPPeers(),
			"--control=" + paths.KeepalivedControl(), "--table-suffix=$(" + contract.EnvPodUID + ")", "--",
			"keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
			"--pid=" + paths.KeepalivedPID(), "--vrrp_pid=" + paths.KeepalivedVRRPPID(),
			"--use-file=" + paths.KeepalivedConfig()},
		Env: []corev1.EnvVar{{Name: contract.EnvPodUID, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}}},
		LivenessProbe: keepalivedLiveness(in, paths),
		Resources:     orDefault(in.Class.KeepalivedResources, defaultKeepalivedResources),
		// Its config read-only; its own runtime files and the tracked
		// health file (keepalived creates it) writable. Nothing of
		// HAProxy's.
		VolumeMounts: []corev1.VolumeMount{
			mount(VolumeKeepalivedConfig, paths.KeepalivedConfigDir(), true),
			mount(VolumeKeepalivedRun, paths.KeepalivedRun(), false),
			mount(VolumeHealth, paths.Health(), false),
		},
		// NET_ADMIN adds and removes the virtual IPs and keeps the VRRP
		// filter's nftables table; NET_RAW sends VRRP adverts and
		// gratuitous ARP.
		SecurityContext: securityContext("NET_ADMIN", "NET_RAW"),
	}
}

// keepalivedLiveness is none with health ports: hakeeper-supervise keepalived is
// the container's first process and exits the moment keepalived does,
// which is all the exec probe checked (the process in keepalived's pid
// file runs); keepalived respawns its own VRRP child.
func keepalivedLiveness(in DataPlaneInput, paths contract.Paths) *corev1.Probe {
	if port, _ := HealthPorts(in.Options.HealthBasePort, in.RouterID); port != 0 {
		return nil
	}
	return execProbe(10, 3, contract.Binary, "probe", "keepalived", "--pid-file="+paths.KeepalivedPID())
}

func agentHealthPort(in DataPlaneInput) int32 {
	port, _ := HealthPorts(in.Options.HealthBasePort, in.RouterID)
	return port
}
