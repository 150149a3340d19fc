package cli

import (
	"context"
	"flag"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/hakeeper/hakeeper/internal/manager"
)

// DefaultDataPlaneImage is the image the Dockerfile's dataplane target builds.
const DefaultDataPlaneImage = "ghcr.io/hakeeper/dataplane:latest"

func runManager(ctx context.Context, args []string, s Streams) error {
	var o manager.Options
	var kubeconfig, pullPolicy string
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(s.Err)
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8443", "address of the metrics endpoint (0 disables it)")
	fs.BoolVar(&o.SecureMetrics, "metrics-secure", true, "serve metrics over HTTPS to callers the API server authorizes")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fs.BoolVar(&o.LeaderElect, "leader-elect", false, "elect one active replica")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader Lease (default: the pod's)")
	fs.StringVar(&o.Namespace, "namespace", "", "watch only this namespace (default: all)")
	fs.StringVar(&o.DataPlaneImage, "dataplane-image", DefaultDataPlaneImage, "image with haproxy, keepalived and the agent")
	fs.StringVar(&pullPolicy, "image-pull-policy", "IfNotPresent", "pull policy of the data-plane image")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
	var qps float64
	var burst int
	fs.Float64Var(&qps, "kube-api-qps", 100, "requests per second to the API server")
	fs.IntVar(&burst, "kube-api-burst", 200, "request burst to the API server")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs) // --zap-log-level, --zap-devel, ...
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.PullPolicy = corev1.PullPolicy(pullPolicy)
	if err := o.Validate(); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts), zap.WriteTo(s.Err)))
	cfg, err := loadConfig(kubeconfig)
	if err != nil {
		return fmt.Errorf("failed to load a kubeconfig: %w", err)
	}
	// controller-runtime's default (20 requests per second) makes creating
	// a hundred LoadBalancers, eight objects each, take most of a minute.
	cfg.QPS, cfg.Burst = float32(qps), burst
	return manager.Run(ctx, cfg, o)
}

func loadConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		return clientcmd.BuildConfigFromFlags("", kubeconfig)
	}
	return ctrl.GetConfig()
}
