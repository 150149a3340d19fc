package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// aliveMaxAge is the oldest beat of the health loop that counts as alive
// (it beats every 100 ms or so).
const aliveMaxAge = 5 * time.Second

// listenHealth opens the port the kubelet probes, on the node's loopback
// (the pod runs on the host network, so nothing off the node reaches it):
// before anything else, so a port another process holds stops the agent
// with that error rather than with failing probes.
func (a *Agent) listenHealth() (net.Listener, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.o.HealthPort))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("the health port: %w", err)
	}
	return l, nil
}

// serveHealth answers the kubelet's probes until ctx ends: AgentAlivePath
// while the health loop beats, AgentStartedPath once the daemons' configs
// are written. A handler reads two values; a process that is stopped or
// starved answers nothing, which fails the probe as well.
func (a *Agent) serveHealth(ctx context.Context, l net.Listener) error {
	mux := http.NewServeMux()
	mux.HandleFunc(contract.AgentAlivePath, func(w http.ResponseWriter, _ *http.Request) {
		beat := a.beat.Load()
		if beat == 0 {
			http.Error(w, "the health loop has not beaten yet", http.StatusServiceUnavailable)
			return
		}
		if age := time.Since(time.Unix(0, beat)); age > aliveMaxAge {
			http.Error(w, fmt.Sprintf("the agent last beat %v ago", age.Round(time.Millisecond)), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc(contract.AgentStartedPath, func(w http.ResponseWriter, _ *http.Request) {
		p := a.o.Paths
		for _, f := range []string{p.HAProxyConfig(), p.KeepalivedConfig(), p.VRRPPeers()} {
			if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
				http.Error(w, f+" is not written yet", http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
