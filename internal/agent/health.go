package agent

import (
	"context"
	"encoding/csv"
	"errors"
	"os"
	"strings"
	"syscall"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/report"
)

// healthLoop reads HAProxy's stats every HealthInterval and writes the
// track file: 0 while HAProxy answers and has a server up, 1 otherwise.
// keepalived watches the file through inotify and enters FAULT the moment
// it turns 1, so the virtual IPs leave a node whose HAProxy died within
// about one interval.
func (a *Agent) healthLoop(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	tick := time.NewTicker(a.o.HealthInterval)
	defer tick.Stop()
	last := ""
	failures := 0
	for {
		healthy, dead, backends := a.probe(ctx)
		if healthy {
			failures = 0
		} else {
			failures++
		}
		value := "0\n"
		if a.unhealthy(dead, failures) {
			value = "1\n"
		}
		if value != last {
			if err := os.WriteFile(a.o.Paths.TrackFile(), []byte(value), 0o644); err != nil {
				log.Error(err, "Writing the track file failed")
			} else {
				log.Info("HAProxy health changed", "healthy", healthy)
				last = value
			}
		}
		a.update(func(r *report.NodeReport) { r.Healthy, r.Backends = value == "0\n", backends })
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Debouncing: a slow answer under load, a socket rebound by a reload, or a
// backend flapping must not move the virtual IPs. Only a HAProxy that
// refuses connections outside a reload counts at once: it has died. Any
// other failure must last faultAfter.
const (
	faultAfter  = time.Second
	reloadGrace = 3 * time.Second
)

func (a *Agent) unhealthy(dead bool, failures int) bool {
	if failures == 0 {
		return false
	}
	if dead && time.Since(a.lastReload()) > reloadGrace {
		return true
	}
	return time.Duration(failures)*a.o.HealthInterval >= faultAfter
}

// probe reads HAProxy's stats. dead means nothing listens on the runtime
// socket any more (connection refused or the socket is gone).
func (a *Agent) probe(ctx context.Context) (healthy, dead bool, backends map[string]report.BackendCount) {
	timeout := min(a.o.HealthInterval*3, time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := haproxyapi.Command(ctx, a.o.Paths.RuntimeSocket(), "show stat")
	if err != nil {
		return false, errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT), nil
	}
	backends, ok := parseStats(out)
	if !ok {
		return false, false, nil
	}
	if len(backends) == 0 {
		return true, false, backends
	}
	for _, b := range backends {
		if b.Up > 0 {
			return true, false, backends
		}
	}
	return false, false, backends
}

// parseStats counts servers up and in total per backend from `show stat`.
// Servers in maintenance (empty slots, drained) do not count.
func parseStats(out string) (map[string]report.BackendCount, bool) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(out, "# ")))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil || len(rows) == 0 {
		return nil, false
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	px, sv, st := col["pxname"], col["svname"], col["status"]
	if st == 0 {
		return nil, false
	}
	counts := map[string]report.BackendCount{}
	for _, row := range rows[1:] {
		if len(row) <= st || row[sv] == "FRONTEND" || row[sv] == "BACKEND" {
			continue
		}
		backend, ok := strings.CutPrefix(row[px], render.BackendName(""))
		if !ok {
			continue
		}
		status := row[st]
		if strings.HasPrefix(status, "MAINT") {
			continue
		}
		c := counts[backend]
		c.Total++
		if strings.HasPrefix(status, "UP") || status == "no check" || status == "DRAIN" {
			c.Up++
		}
		counts[backend] = c
	}
	return counts, true
}
