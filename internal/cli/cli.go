// Package cli holds hakeeper's subcommands. main.go only dispatches here.
package cli

import (
	"context"
	"errors"
	"flag"
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

// newFlagSet is a subcommand's flag set. Its usage goes to standard
// output when asked for (-h, --help: the command then exits 0, see Run),
// and to standard error with a parsing error.
func newFlagSet(name string, args []string, s Streams) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(s.Err)
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "-h" || a == "-help" || a == "--help" || a == "--h" {
			fs.SetOutput(s.Out)
		}
	}
	return fs
}

var commands = []command{
	{"render", "print the haproxy.cfg and keepalived.conf a LoadBalancer renders to", runRender},
	{"manager", "run the operator", runManager},
	{"probe", "check that HAProxy answers on its runtime socket (liveness probe)", runProbe},
	{"agent", "run the data-plane agent beside HAProxy and Keepalived", runAgent},
	{"version", "print hakeeper's version, revision and Go version", runVersion},
}

// Run runs the subcommand args[0] and returns the process exit code.
func Run(ctx context.Context, args []string, s Streams) int {
	if len(args) == 0 {
		usage(s.Err)
		return 2
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		usage(s.Out)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], s)
		if errors.Is(err, flag.ErrHelp) {
			return 0 // the flags were printed, as asked
		}
		if err != nil {
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
