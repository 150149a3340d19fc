package cli

import (
	"context"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/manager"
)

// DefaultDataPlaneImage is the image the Dockerfile's dataplane target builds.
const DefaultDataPlaneImage = "ghcr.io/hakeeper/dataplane:latest"

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runManager(ctx context.Context, args []string, s Streams) error {
	var o manager.Options
	var pullPolicy string
	fs := newFlagSet("manager", args, s)
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", "address of the metrics endpoint (0 disables it)")
	fs.BoolVar(&o.SecureMetrics, "metrics-secure", true, "serve metrics over HTTPS to callers the API server authorizes")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect one active replica")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default: the pod's)")
	fs.StringVar(&o.DataPlaneNamespace, "dataplane-namespace", envOr("POD_NAMESPACE", "hakeeper-system"),
		"namespace of every data plane (DaemonSets, ConfigMaps, agent identities); it must allow privileged pods and tenants must have no access to it")
	fs.StringVar(&o.DataPlaneImage, "dataplane-image", DefaultDataPlaneImage, "image with haproxy, keepalived and the agent")
	fs.IntVar(&o.DataPlaneMetricsBasePort, "dataplane-metrics-base-port", 9800,
		"the agents serve metrics on each node's address at this port plus their LoadBalancer's VRRP router ID (1-255); 0 turns data-plane metrics off")
	fs.IntVar(&o.DataPlaneHealthBasePort, "dataplane-health-base-port", desired.DefaultHealthBasePort,
		"the kubelet probes the agents and HAProxy on each node's loopback at this port plus their LoadBalancer's router ID, and 255 above; 0 keeps exec probes")
	fs.StringVar(&o.DefaultServiceClass, "default-service-class", "",
		"LoadBalancerClass that serves Services of type LoadBalancer without spec.loadBalancerClass; empty (default) leaves them to another implementation")
	fs.StringVar(&o.DataPlanePriorityClass, "dataplane-priority-class", "",
		"PriorityClass of the data-plane pods (the chart's and kustomize's: hakeeper-dataplane); empty for none")
	var pullSecrets string
	fs.StringVar(&pullSecrets, "dataplane-image-pull-secrets", "",
		"comma-separated Secrets in the data-plane namespace that every data-plane pod pulls its images with (a private registry)")
	fs.StringVar(&pullPolicy, "image-pull-policy", "IfNotPresent", "pull policy of the data-plane image")
	var qps float64
	var burst int
	fs.Float64Var(&qps, "kube-api-qps", 100, "requests per second to the API server")
	fs.IntVar(&burst, "kube-api-burst", 200, "request burst to the API server")
	var cluster clusterFlags
	cluster.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.PullPolicy = corev1.PullPolicy(pullPolicy)
	if pullSecrets != "" {
		o.DataPlaneImagePullSecrets = strings.Split(pullSecrets, ",")
	}
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, err := cluster.connect(s.Err)
	if err != nil {
		return err
	}
	if err := announce("manager"); err != nil {
		return err
	}
	// controller-runtime's default (20 requests per second) makes creating
	// a hundred LoadBalancers, eight objects each, take most of a minute.
	cfg.QPS, cfg.Burst = float32(qps), burst
	return manager.Run(ctx, cfg, o)
}
