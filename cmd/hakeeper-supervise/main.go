// Command hakeeper-supervise runs HAProxy or keepalived as its child in
// their data-plane containers (see internal/supervise). It is its own
// binary, apart from hakeeper, because two run in every data-plane pod on
// every node: it links none of the Kubernetes client, so each costs about
// 1 MiB of private memory where the hakeeper binary's package
// initialisation alone cost 7.
//
//	hakeeper-supervise haproxy [--track-file=PATH] -- haproxy ARGS...
//	hakeeper-supervise keepalived [--config=PATH] [--peers=PATH --table-suffix=UID] [--control=SOCKET] -- keepalived ARGS...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hakeeper/hakeeper/internal/supervise"
)

func main() {
	// As hakeeper's main: SIGTERM ends the context (the control socket),
	// while the supervisor forwards it to its child as well.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], supervise.Streams{Out: os.Stdout, Err: os.Stderr})
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, s supervise.Streams) int {
	commands := map[string]func(context.Context, []string, supervise.Streams) error{
		"haproxy":    supervise.HAProxy,
		"keepalived": supervise.Keepalived,
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(s.Out)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	command, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(s.Err, "hakeeper-supervise: unknown command %q\n", args[0])
		usage(s.Err)
		return 2
	}
	err := command(ctx, args[1:], s)
	if errors.Is(err, flag.ErrHelp) {
		return 0 // the flags were printed
	}
	if err != nil {
		fmt.Fprintf(s.Err, "hakeeper-supervise %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: hakeeper-supervise COMMAND [FLAGS] -- PROGRAM ARGS...

  haproxy      run HAProxy and set keepalived's tracked file the moment it exits
  keepalived   run keepalived and remove its virtual IPs whenever it is not running

hakeeper-supervise COMMAND -h lists a command's flags.
`)
}
