package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/hakeeper/hakeeper/internal/agent"
	"github.com/hakeeper/hakeeper/internal/configcheck"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/render"
)

func runAgent(ctx context.Context, args []string, s Streams) error {
	o := agent.Options{
		Node:         os.Getenv(desired.EnvNodeName),
		Namespace:    os.Getenv(desired.EnvPodNamespace),
		LoadBalancer: os.Getenv(desired.EnvLoadBalancer),
		HostIP:       os.Getenv(desired.EnvHostIP),
		Checker:      configcheck.Default(),
	}
	var kubeconfig string
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(s.Err)
	defaults := render.DefaultPaths()
	fs.StringVar(&o.Paths.RunDir, "run-dir", defaults.RunDir, "sockets, track file, notify FIFO, TLS material")
	fs.StringVar(&o.Paths.ConfigDir, "config-dir", defaults.ConfigDir, "haproxy.cfg and keepalived.conf")
	fs.DurationVar(&o.HealthInterval, "health-interval", 100*time.Millisecond, "how often HAProxy's health is read")
	fs.DurationVar(&o.ResyncInterval, "resync-interval", 10*time.Second, "how often TLS Secrets are re-read")
	fs.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: $KUBECONFIG or in-cluster)")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts), zap.WriteTo(s.Err)))
	cfg, err := loadConfig(kubeconfig)
	if err != nil {
		return fmt.Errorf("failed to load a kubeconfig: %w", err)
	}
	a, err := agent.New(cfg, o)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
