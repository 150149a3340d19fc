// Command pause is the sandbox ("pause") container of every pod in the lab:
// it holds the pod's namespaces open and does nothing else. No registry is
// reachable here, so hack/images.sh builds it from this file instead of
// pulling registry.k8s.io/pause.
//
// The data-plane pods set shareProcessNamespace, which makes pause PID 1 of
// the pod: processes orphaned in any of the pod's containers (haproxy's and
// keepalived's children, scripts) are re-parented to it, so it must reap
// them or they stay zombies. As PID 1 it also gets no default signal
// handling from the kernel, so SIGTERM and SIGINT are handled explicitly.
package main

import (
	"errors"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Separate channels: a burst of SIGCHLD must never crowd out SIGTERM
	// (signal.Notify drops a signal when the channel is full). One pending
	// SIGCHLD is enough, since reap collects every exited child.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	child := make(chan os.Signal, 1)
	signal.Notify(child, syscall.SIGCHLD)

	reap() // children that exited before the handler was installed
	for {
		select {
		case <-stop:
			os.Exit(0)
		case <-child:
			reap()
		}
	}
}

// reap collects every child that has exited, without blocking.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 { // ECHILD: no children; 0: none exited yet
			return
		}
	}
}
