package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/haproxyapi"
)

// runProbe is the data-plane containers' probes, each hakeeper's own
// command (the admission policy on the data plane allows no other exec
// probe): `hakeeper probe haproxy` succeeds when HAProxy answers on its
// runtime socket; `hakeeper probe agent` when the agent's health loop beat
// recently (a hung agent stops beating, and the kubelet restarts it);
// `hakeeper probe files` when the configs are written (the agent's startup
// probe); `hakeeper probe keepalived` when the process in keepalived's pid
// file runs.
func runProbe(ctx context.Context, args []string, s Streams) error {
	fs := newFlagSet("probe", args, s)
	defaults := contract.DefaultPaths()
	socket := fs.String("socket", defaults.RuntimeSocket(), "HAProxy runtime API socket")
	timeout := fs.Duration("timeout", 2*time.Second, "how long to wait for an answer")
	heartbeat := fs.String("heartbeat", defaults.Heartbeat(), "the agent's heartbeat file")
	maxAge := fs.Duration("max-age", 5*time.Second, "the oldest heartbeat that counts as alive")
	pidFile := fs.String("pid-file", defaults.KeepalivedPID(), "keepalived's pid file")
	const usage = "usage: hakeeper probe haproxy [--socket=PATH] [--timeout=2s] | probe agent [--heartbeat=PATH] [--max-age=5s] | " +
		"probe files FILE... | probe keepalived [--pid-file=PATH]"
	if len(args) > 0 && slices.Contains([]string{"-h", "-help", "--help", "--h"}, args[0]) {
		fmt.Fprintln(s.Out, usage)
		fs.SetOutput(s.Out)
		fs.PrintDefaults()
		return flag.ErrHelp
	}
	if len(args) == 0 || !slices.Contains([]string{"haproxy", "agent", "files", "keepalived"}, args[0]) {
		return errors.New(usage)
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "files":
		if fs.NArg() == 0 {
			return errors.New(usage)
		}
		for _, f := range fs.Args() {
			if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
				return fmt.Errorf("%s is not written yet", f)
			}
		}
		return nil
	case "keepalived":
		data, err := os.ReadFile(*pidFile)
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil || pid <= 0 {
			return fmt.Errorf("%s holds no pid", *pidFile)
		}
		return syscall.Kill(pid, 0)
	case "agent":
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
