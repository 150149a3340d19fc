package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/haproxyapi"
)

// runProbe is the data-plane containers' liveness check: `hakeeper probe
// haproxy` succeeds when HAProxy answers on its runtime socket; `hakeeper
// probe agent` when the agent's health loop beat recently (a hung agent
// stops beating, and the kubelet restarts it).
func runProbe(ctx context.Context, args []string, s Streams) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(s.Err)
	socket := fs.String("socket", contract.DefaultPaths().RuntimeSocket(), "HAProxy runtime API socket")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for an answer")
	heartbeat := fs.String("heartbeat", contract.DefaultPaths().Heartbeat(), "the agent's heartbeat file")
	maxAge := fs.Duration("max-age", 5*time.Second, "the oldest heartbeat that counts as alive")
	if len(args) == 0 || (args[0] != "haproxy" && args[0] != "agent") {
		return errors.New("usage: hakeeper probe haproxy [--socket=PATH] [--timeout=2s] | probe agent [--heartbeat=PATH] [--max-age=5s]")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if args[0] == "agent" {
		fi, err := os.Stat(*heartbeat)
		if err != nil {
			return err
		}
		if age := time.Since(fi.ModTime()); age > *maxAge {
			return fmt.Errorf("the agent last beat %v ago", age.Round(time.Millisecond))
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return haproxyapi.Alive(ctx, *socket)
}
