// Package supervise runs HAProxy and keepalived as children, each in its
// container, and does what must happen the moment either exits, whether
// or not the agent is alive: HAProxy's exit sets the file keepalived
// tracks; keepalived's removes the virtual IPs it left, and its VRRP
// filter is written before it starts. cmd/hakeeper-supervise is its
// binary: small, without the Kubernetes client, since two of them run in
// every data-plane pod.
package supervise

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/hakeeper/hakeeper/internal/contract/layout"
)

// HAProxy runs HAProxy as its child and, the moment HAProxy's
// master exits for any reason, sets the file keepalived tracks, so the node
// gives up the virtual IPs even when the agent, which otherwise writes that
// file, is dead or hung. It forwards every signal the kubelet or the agent
// sends and exits as HAProxy did. A reload re-executes the master in place
// (same process), so it is not an exit.
func HAProxy(ctx context.Context, args []string, s Streams) error {
	fs := flag.NewFlagSet("haproxy", flag.ContinueOnError)
	fs.SetOutput(s.Err)
	track := fs.String("track-file", layout.Default().TrackFile(), "the file keepalived tracks; set when HAProxy exits")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("usage: hakeeper-supervise haproxy [--track-file=PATH] -- haproxy ARGS...")
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, s.Out, s.Err
	// If this process is killed, HAProxy goes with it (the kubelet then
	// restarts the container whole): no HAProxy outlives its supervisor
	// unseen.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT)
	defer signal.Stop(signals)
	if err := cmd.Start(); err != nil {
		setTrackFile(*track, s)
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-signals:
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			setTrackFile(*track, s)
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				return fmt.Errorf("haproxy exited: %s", exit.ProcessState)
			}
			if err != nil {
				return err
			}
			return errors.New("haproxy exited")
		}
	}
}

// Streams are the supervisor's output and error, which its child shares.
type Streams struct {
	Out, Err io.Writer
}

func setTrackFile(path string, s Streams) {
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		fmt.Fprintf(s.Err, "hakeeper-supervise haproxy: setting %s: %v\n", path, err)
	}
}
