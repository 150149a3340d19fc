// Package testenv starts a real kube-apiserver and etcd (controller-runtime's
// envtest) with hakeeper's CRDs installed. The binaries come from
// hack/control-plane.sh through KUBEBUILDER_ASSETS.
package testenv

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	apiruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/leftovers"
)

// Env is a running control plane.
type Env struct {
	env    *envtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *apiruntime.Scheme
}

// RepoRoot is the repository's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..")
}

// Start starts etcd and kube-apiserver and installs the CRDs. It fails with
// a hint when KUBEBUILDER_ASSETS is missing.
func Start() (*Env, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(RepoRoot(), "bin", "k8s")
	}
	if _, err := os.Stat(filepath.Join(assets, "kube-apiserver")); err != nil {
		return nil, fmt.Errorf("no kube-apiserver in %s: run hack/control-plane.sh (make test does): %w", assets, err)
	}
	scheme := apiruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	// A killed earlier run may have left its API server and etcd running.
	for _, what := range leftovers.Reap(nil) {
		fmt.Fprintf(os.Stderr, "testenv: removed leftover %s\n", what)
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		// With many watchers connected (the lab's agents), the API server
		// can take longer than the default 20 s to stop.
		ControlPlaneStopTimeout: time.Minute,
		Scheme:                  scheme,
	}
	// A dual-stack cluster, as bare-metal ones often are: the API server
	// refuses a RequireDualStack Service in a single-stack one.
	env.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/24,fd00:10::/108")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("failed to start envtest: %w", err)
	}
	if err := leftovers.RecordChildren(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: cannot record the control plane's processes: %v\n", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{env: env, Config: cfg, Client: c, Scheme: scheme}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error {
	err := e.env.Stop()
	if err == nil {
		leftovers.Forget()
	}
	return err
}

// GVK of a LoadBalancer, for unstructured requests.
var LoadBalancerGVK = schema.GroupVersionKind{Group: v1alpha1.GroupVersion.Group, Version: v1alpha1.GroupVersion.Version, Kind: "LoadBalancer"}

// KubeCtl is a kubectl (from KUBEBUILDER_ASSETS) configured for this
// control plane.
func (e *Env) KubeCtl() interface {
	Run(args ...string) (stdout, stderr io.Reader, err error)
} {
	return e.env.ControlPlane.KubeCtl()
}

// WriteKubeconfig writes a kubeconfig with cluster-admin rights for this
// control plane, for processes started outside the test (the manager
// binary, kubectl).
func (e *Env) WriteKubeconfig(path string) error {
	user, err := e.env.AddUser(envtest.User{Name: "hakeeper-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	data, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}
