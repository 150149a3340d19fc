package cli

import (
	"context"
	"errors"
	"flag"
	"time"

	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/haproxyapi"
)

// runProbe is the data-plane containers' liveness check: `hakeeper probe
// haproxy` succeeds when HAProxy answers on its runtime socket.
func runProbe(ctx context.Context, args []string, s Streams) error {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(s.Err)
	socket := fs.String("socket", contract.DefaultPaths().RuntimeSocket(), "HAProxy runtime API socket")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for an answer")
	if len(args) == 0 || args[0] != "haproxy" {
		return errors.New("usage: hakeeper probe haproxy [--socket=PATH] [--timeout=2s]")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return haproxyapi.Alive(ctx, *socket)
}
