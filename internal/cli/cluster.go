package cli

import (
	"flag"
	"fmt"
	"io"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// clusterFlags are the flags every command that talks to the API server
// shares: where the kubeconfig is and how to log.
type clusterFlags struct {
	kubeconfig string
	zap        zap.Options
}

func (c *clusterFlags) bind(fs *flag.FlagSet) {
	fs.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster)")
	c.zap.BindFlags(fs) // --zap-log-level, --zap-devel, ...
}

// connect sets up logging to stderr and loads the client configuration.
func (c *clusterFlags) connect(stderr io.Writer) (*rest.Config, error) {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&c.zap), zap.WriteTo(stderr)))
	var cfg *rest.Config
	var err error
	if c.kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", c.kubeconfig)
	} else {
		cfg, err = ctrl.GetConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("failed to load a kubeconfig: %w", err)
	}
	return cfg, nil
}
