// Package cli holds hakeeper's subcommands. main.go only dispatches here.
package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// Streams are a command's standard input, output and error.
type Streams struct {
	In       io.Reader
	Out, Err io.Writer
}

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, s Streams) error
}

var commands = []command{
	{"render", "print the haproxy.cfg and keepalived.conf a LoadBalancer renders to", runRender},
	{"manager", "run the operator", runManager},
	{"probe", "check that HAProxy answers on its runtime socket (liveness probe)", runProbe},
	{"agent", "run the data-plane agent beside HAProxy and Keepalived", runAgent},
}

// Run runs the subcommand args[0] and returns the process exit code.
func Run(ctx context.Context, args []string, s Streams) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(s.Err)
		return 2
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		if err := c.run(ctx, args[1:], s); err != nil {
			fmt.Fprintf(s.Err, "hakeeper %s: %v\n", c.name, err)
			return 1
		}
		return 0
	}
	fmt.Fprintf(s.Err, "hakeeper: unknown command %q\n\n", args[0])
	usage(s.Err)
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("Usage: hakeeper <command> [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'hakeeper <command> -h' for a command's flags.\n")
	io.WriteString(w, b.String())
}
