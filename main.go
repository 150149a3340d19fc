// Command hakeeper is one binary with three jobs: `manager` runs the
// operator, `agent` runs beside HAProxy and Keepalived on each node, and
// `render` previews the configs a LoadBalancer turns into.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/hakeeper/hakeeper/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Streams{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}
