// Package manager runs the operator: the LoadBalancer controller inside a
// controller-runtime manager with leader election, health probes and
// metrics.
package manager

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/controllers"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/resolve"
)

// Authenticated metrics ask the API server who is calling.
//
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

// Options configure the operator.
type Options struct {
	// MetricsAddr serves Prometheus metrics; "0" turns them off.
	MetricsAddr string
	// SecureMetrics serves metrics over HTTPS, for callers the API server
	// authenticates and authorizes.
	SecureMetrics bool
	// ProbeAddr serves /healthz and /readyz.
	ProbeAddr string
	// LeaderElect lets several replicas run with one active.
	LeaderElect bool
	// LeaderElectionNamespace holds the Lease; empty means the pod's own.
	LeaderElectionNamespace string
	// DataPlaneNamespace holds every data plane.
	DataPlaneNamespace string
	// DataPlaneImage runs HAProxy, Keepalived and the agent.
	DataPlaneImage string
	// DefaultServiceClass serves Services of type LoadBalancer without a
	// spec.loadBalancerClass; empty leaves them alone.
	DefaultServiceClass string
	// DataPlanePriorityClass of the data-plane pods; empty for none.
	DataPlanePriorityClass string
	// DataPlaneImagePullSecrets name Secrets in DataPlaneNamespace the
	// data-plane pods pull their images with.
	DataPlaneImagePullSecrets []string
	// PullPolicy of the data-plane image.
	PullPolicy corev1.PullPolicy
	// DataPlaneMetricsBasePort plus a LoadBalancer's VRRP router ID is the
	// port its agents serve metrics on, on each node's address; 0 turns
	// data-plane metrics off.
	DataPlaneMetricsBasePort int
	// DataPlaneHealthBasePort places the loopback ports the kubelet probes
	// (desired.HealthPorts); 0 keeps exec probes.
	DataPlaneHealthBasePort int
	// Resolve, if set, looks up static servers' DNS names instead of the
	// system's resolver (tests: no DNS server answers here).
	Resolve resolve.Lookup
	// WrapClient, if set, wraps the client the reconciler writes with (tests
	// count writes through it).
	WrapClient func(client.Client) client.Client
}

// Validate checks the options before anything starts.
func (o *Options) Validate() error {
	var errs []error
	if o.DataPlaneNamespace == "" {
		errs = append(errs, errors.New("--dataplane-namespace is required"))
	}
	if o.DataPlaneImage == "" {
		errs = append(errs, errors.New("--dataplane-image is required"))
	}
	switch o.PullPolicy {
	case corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever, "":
	default:
		errs = append(errs, fmt.Errorf("--image-pull-policy %q: want Always, IfNotPresent or Never", o.PullPolicy))
	}
	if p := o.DataPlaneMetricsBasePort; p != 0 && (p < 1024 || p+desired.MaxRouterID > 65535) {
		errs = append(errs, fmt.Errorf("--dataplane-metrics-base-port %d: want 0 (off) or 1024 to %d, so that every router ID (1 to %d) adds up to a port", p, 65535-desired.MaxRouterID, desired.MaxRouterID))
	}
	if p := o.DataPlaneHealthBasePort; p != 0 && (p < 1024 || p+2*desired.MaxRouterID > 65535) {
		errs = append(errs, fmt.Errorf("--dataplane-health-base-port %d: want 0 (exec probes) or 1024 to %d, so that every router ID (1 to %d) adds up to two ports", p, 65535-2*desired.MaxRouterID, desired.MaxRouterID))
	}
	for _, name := range o.DataPlaneImagePullSecrets {
		if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--dataplane-image-pull-secrets: %q is not a Secret name: %s", name, strings.Join(msgs, "; ")))
		}
	}
	if o.ProbeAddr == "" {
		errs = append(errs, errors.New("--health-probe-bind-address must not be empty (use 0 to disable)"))
	}
	return errors.Join(errs...)
}

// Scheme holds every type the operator reads or writes.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	utilMust(clientgoscheme.AddToScheme(s))
	utilMust(v1alpha1.AddToScheme(s))
	return s
}

func utilMust(err error) {
	if err != nil {
		panic(err)
	}
}

// New builds the manager with the controller registered.
func New(cfg *rest.Config, o Options) (ctrl.Manager, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	// Only hakeeper's own objects are cached: a cluster's other ConfigMaps
	// would cost memory for nothing. ConfigMaps, DaemonSets, their pods
	// and ServiceAccounts live in the data-plane namespace only (where the
	// manager may list them); the TLS Roles sit in tenants' namespaces.
	ours := labels.SelectorFromSet(labels.Set{desired.LabelManagedBy: desired.ManagedBy})
	inDataPlane := cache.ByObject{Label: ours, Namespaces: map[string]cache.Config{o.DataPlaneNamespace: {}}}
	cacheOpts := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.ConfigMap{}:      inDataPlane,
		&appsv1.DaemonSet{}:      inDataPlane,
		&corev1.Pod{}:            inDataPlane,
		&corev1.ServiceAccount{}: inDataPlane,
		&rbacv1.Role{}:           {Label: ours},
		&rbacv1.RoleBinding{}:    {Label: ours},
	}}
	metrics := metricsserver.Options{BindAddress: o.MetricsAddr, SecureServing: o.SecureMetrics}
	if o.SecureMetrics {
		metrics.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  Scheme(),
		Cache:                   cacheOpts,
		Metrics:                 metrics,
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        "hakeeper.io",
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		// A new leader does not wait for the old lease to expire when the
		// old one steps down cleanly.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the manager: %w", err)
	}
	c := mgr.GetClient()
	if o.WrapClient != nil {
		c = o.WrapClient(c)
	}
	r := &controllers.LoadBalancerReconciler{
		Client:    c,
		APIReader: mgr.GetAPIReader(),
		Resolve:   o.Resolve,
		Recorder:  mgr.GetEventRecorder("hakeeper"),
		DataPlane: desired.DataPlaneOptions{Namespace: o.DataPlaneNamespace, Image: o.DataPlaneImage, ImagePullPolicy: o.PullPolicy,
			MetricsBasePort: o.DataPlaneMetricsBasePort, HealthBasePort: o.DataPlaneHealthBasePort, PriorityClassName: o.DataPlanePriorityClass,
			ImagePullSecrets: o.DataPlaneImagePullSecrets},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the controller: %w", err)
	}
	services := &controllers.ServiceReconciler{Client: c, Recorder: mgr.GetEventRecorder("hakeeper"), DefaultClass: o.DefaultServiceClass}
	if err := services.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the Service controller: %w", err)
	}
	classes := &controllers.ClassReconciler{Client: c, Recorder: mgr.GetEventRecorder("hakeeper")}
	if err := classes.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("failed to set up the class controller: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("caches not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Run builds the manager and runs it until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	mgr, err := New(cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}
