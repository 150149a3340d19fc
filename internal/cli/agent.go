package cli

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hakeeper/hakeeper/internal/agent"
	"github.com/hakeeper/hakeeper/internal/configcheck"
	"github.com/hakeeper/hakeeper/internal/contract"
)

// agentGCPercent is the agent's GOGC.
const agentGCPercent = 50

func runAgent(ctx context.Context, args []string, s Streams) error {
	// One agent runs per LoadBalancer on every node, and its heap is small
	// and steady: collecting at half the default growth took its
	// anonymous memory from 11.0-11.3 to 10.0-10.2 MiB (make bench-idle),
	// its CPU unchanged. GOGC in the environment still wins.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(agentGCPercent)
	}
	o := agent.Options{
		Node:                  os.Getenv(contract.EnvNodeName),
		Pod:                   os.Getenv(contract.EnvPodName),
		Namespace:             os.Getenv(contract.EnvPodNamespace),
		LoadBalancer:          os.Getenv(contract.EnvLoadBalancer),
		LoadBalancerNamespace: os.Getenv(contract.EnvLoadBalancerNamespace),
		HostIP:                os.Getenv(contract.EnvHostIP),
		Checker:               configcheck.Default(),
	}
	fs := newFlagSet("agent", args, s)
	defaults := contract.DefaultPaths()
	fs.StringVar(&o.Paths.RunDir, "run-dir", defaults.RunDir, "sockets, track file, notify FIFO, TLS material")
	fs.StringVar(&o.Paths.ConfigDir, "config-dir", defaults.ConfigDir, "haproxy.cfg and keepalived.conf")
	fs.DurationVar(&o.HealthInterval, "health-interval", 100*time.Millisecond, "how often HAProxy's health is read while anything is in flux")
	fs.DurationVar(&o.IdleHealthInterval, "idle-health-interval", time.Second, "how often HAProxy's health is read while all is steady (a hang is found within this and 1 s)")
	fs.DurationVar(&o.ResyncInterval, "resync-interval", 10*time.Second, "how often TLS Secrets are re-read")
	fs.IntVar(&o.MetricsPort, "metrics-port", 0, "serve metrics over HTTPS on the node's address at this port (0: off)")
	fs.IntVar(&o.HealthPort, "health-port", 0, "answer the kubelet's probes on 127.0.0.1 at this port (0: off; the exec probes read the heartbeat file)")
	var cluster clusterFlags
	cluster.bind(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Before the agent reads its API token: a process that is not
	// dumpable can be inspected (/proc/<agent>/root, mem) only with
	// CAP_SYS_PTRACE, which no container holds, should a process of the
	// same user ever see it. Flags are parsed first, so -h changes nothing.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("failed to make the agent undumpable: %w", err)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, err := cluster.connect(s.Err)
	if err != nil {
		return err
	}
	if err := announce("agent"); err != nil {
		return err
	}
	a, err := agent.New(cfg, o)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}
