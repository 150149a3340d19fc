package agent

import (
	"context"
	"encoding/csv"
	"os"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/ifaddr"
	"github.com/hakeeper/hakeeper/internal/render"
)

// healthLoop reads HAProxy's stats and writes the track file: 0 while
// HAProxy answers, 1 otherwise. keepalived watches the file through
// inotify and enters FAULT the moment it turns 1, so the virtual IPs leave
// a node whose HAProxy died within milliseconds of its death.
//
// It reads every HealthInterval (100 ms) while anything is in flux (a
// failure or an empty backend being debounced, HAProxy down, its master
// gone, a reload within its grace, a preempt hold about to lift), and
// every IdleHealthInterval (1 s) while all is steady: ten reads a second
// of every LoadBalancer's stats on every node were most of what an idle
// LoadBalancer cost. A death is not waited for: masterWatchLoop wakes the
// loop the moment HAProxy's master goes, and keepalived's own supervisor
// sets the track file when it exits. Only a HAProxy that hangs is found
// by the poll, within IdleHealthInterval + faultAfter.
//
// A HAProxy that answers but has no server up in any backend sets the
// no-servers file instead (see render.NoServersTrackName): the node stays
// in VRRP at the lowest priority, so the VIP goes to a node with servers
// up if one exists and otherwise stays where it is.
//
// The same loop enforces the preempt delay through a second tracked file
// (see render.HoldTrackName): it holds the node at the lowest priority
// until HAProxy has been healthy for the delay.
func (a *Agent) healthLoop(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	track := flagFile{path: a.o.Paths.TrackFile(), set: fileSet(a.o.Paths.TrackFile())}
	hold := flagFile{path: a.o.Paths.PreemptHold(), set: fileSet(a.o.Paths.PreemptHold())}
	noServers := flagFile{path: a.o.Paths.NoServers(), set: fileSet(a.o.Paths.NoServers())}
	maintenance := flagFile{path: a.o.Paths.Maintenance(), set: fileSet(a.o.Paths.Maintenance())}
	machine := newHealthMachine(!hold.set)
	// The virtual IPs the interface holds are read again when the kernel
	// says an address changed; without that (the watch failed), polled.
	addrChanged, err := ifaddr.Watch(ctx)
	if err != nil {
		log.Info("Watching the node's addresses failed; polling them", "error", err.Error())
	}
	var holds []string
	var heldOf *[]string
	var looked, lookedOwn, lookedHolds time.Time
	for {
		answers, dead, backends, why := a.probe(ctx)
		var masterExitedAt time.Time
		if track.setElsewhere() { // by hakeeper-supervise haproxy, when the master exited
			masterExitedAt = modTime(track.path)
		}
		in := healthInput{
			now: time.Now(), answers: answers, dead: dead, serving: answers && anyServerUp(backends), why: why,
			trackSet: track.set, masterHeldAt: time.Unix(0, a.masterHeldAt.Load()), masterGone: a.masterGone.Load(),
			lastReload: a.lastReload(), delay: time.Duration(a.preemptDelay.Load()),
			fast: a.o.HealthInterval, idle: a.o.IdleHealthInterval, masterExitedAt: masterExitedAt,
		}
		now := in.now
		a.metrics.setBackends(backends)
		d := machine.step(in)
		if changed, err := track.write(d.faulty); err != nil {
			log.Error(err, "Writing the track file failed")
		} else if changed {
			log.Info("HAProxy health changed", "healthy", !d.faulty, "reason", d.why, "failingFor", machine.debounce.failedFor(now).String())
		}
		a.metrics.setTracked(trackedHealth, track.set)
		if d.noServersDecided {
			if changed, err := noServers.write(d.noServers); err != nil {
				log.Error(err, "Writing the no-servers file failed")
			} else if changed {
				log.Info("Servers up changed", "noServerUp", d.noServers)
			}
		}
		a.metrics.setTracked(trackedNoServers, noServers.set)
		if changed, err := maintenance.write(a.maintenance.Load()); err != nil {
			log.Error(err, "Writing the maintenance file failed")
		} else if changed {
			log.Info("Maintenance changed: the node's claim is lowered while it is set", "maintenance", maintenance.set)
		}
		a.metrics.setTracked(trackedMaintenance, maintenance.set)
		in.holdRestarted = hold.setElsewhere() // keepalived restarted: the delay starts over
		machine.settle(in, &d, track.set, noServers.set)
		if changed, err := hold.write(d.held); err != nil {
			log.Error(err, "Writing the preempt hold file failed")
		} else if changed {
			log.Info("Preempt hold changed", "held", d.held)
		}
		a.metrics.setTracked(trackedPreemptHold, hold.set)
		// The liveness probe's evidence that this loop runs: served on the
		// health port, or, without one, a file the exec probe reads.
		a.beat.Store(now.UnixNano())
		if a.o.HealthPort == 0 {
			if err := os.Chtimes(a.o.Paths.Heartbeat(), now, now); err != nil {
				_ = os.WriteFile(a.o.Paths.Heartbeat(), nil, 0o644)
			}
		}
		// What the interface carries, not what keepalived says: a split
		// brain or a VIP left behind shows here. Read when the kernel said
		// an address changed or the virtual IPs did, and every
		// holdsRecheck besides (every idle read without the watch).
		vips := a.virtualIPs.Load()
		recheck := holdsRecheck
		if addrChanged == nil {
			recheck = a.o.IdleHealthInterval
		}
		observed := false
		if vips != heldOf || now.Sub(lookedHolds) >= recheck {
			heldOf, lookedHolds, observed = vips, now, true
			holds = nil
			if vips != nil {
				holds = ifaddr.Held(a.iface, *vips)
			}
		}
		// The node's other addresses read at most once an idle interval
		// and once every ownRecheck.
		var linkLocal string
		if now.Sub(looked) >= a.o.IdleHealthInterval {
			looked = now
			if a.snapshot().LinkLocal == "" {
				// Reported once known (IPv6 may come up after the agent).
				linkLocal = ifaddr.LinkLocal(a.iface)
			}
		}
		var own []string
		if now.Sub(lookedOwn) >= ownRecheck {
			lookedOwn = now
			own = ifaddr.Own(a.iface)
		}
		a.update(func(r *contract.NodeReport) {
			if linkLocal != "" {
				r.LinkLocal = linkLocal
			}
			if own != nil {
				r.Addresses = own
			}
			r.Healthy, r.Backends = d.serves, backends
			r.Fault = fault(d, noServers.set, maintenance.set)
			if observed {
				r.HoldsObserved, r.Holds = true, holds
			}
		})
		timer := time.NewTimer(d.wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-a.healthNow:
		case _, ok := <-addrChanged:
			if !ok {
				addrChanged = nil
			}
			lookedHolds = time.Time{}
		}
		timer.Stop()
	}
}

// paceState is what decides how soon HAProxy is read again.
type paceState struct {
	// unsettled: something is in flux (a failure or empty backend being
	// debounced, HAProxy down or its master gone, a reload in its grace).
	unsettled bool
	// holdLifts: the preempt hold lifts after this long (0: no hold
	// waiting to lift).
	holdLifts time.Duration
}

// pace is how long the health loop waits: fast while unsettled, idle
// otherwise, and no longer than until a preempt hold lifts.
func pace(fast, idle time.Duration, s paceState) time.Duration {
	wait := idle
	if s.unsettled {
		wait = fast
	}
	if s.holdLifts > 0 && s.holdLifts < wait {
		wait = max(s.holdLifts, time.Millisecond)
	}
	return wait
}

// debouncer times how long HAProxy has failed to answer and how long its
// backends have had no server up, so that neither moves a VIP before
// faultAfter, whatever the interval between reads.
type debouncer struct {
	// failingSince: the first of the reads that have failed since the
	// last answer; zero while HAProxy answers.
	failingSince time.Time
	// emptySince: the first answer of those since the last one with a
	// server up; zero while one is up. Kept while HAProxy does not answer.
	emptySince time.Time
}

func (d *debouncer) observe(now time.Time, answers, serving bool) {
	switch {
	case !answers:
		if d.failingSince.IsZero() {
			d.failingSince = now
		}
	case serving:
		d.failingSince, d.emptySince = time.Time{}, time.Time{}
	default:
		d.failingSince = time.Time{}
		if d.emptySince.IsZero() {
			d.emptySince = now
		}
	}
}

// failing: the last read got no answer.
func (d *debouncer) failing() bool { return !d.failingSince.IsZero() }

// failedFor is how long HAProxy has not answered (0 while it answers).
func (d *debouncer) failedFor(now time.Time) time.Duration {
	if d.failingSince.IsZero() {
		return 0
	}
	return now.Sub(d.failingSince)
}

// emptyFor is how long no server has been up (0 while one is).
func (d *debouncer) emptyFor(now time.Time) time.Duration {
	if d.emptySince.IsZero() {
		return 0
	}
	return now.Sub(d.emptySince)
}

// unsettled: a failure or an empty backend seen and not yet old enough to
// act on, or HAProxy failing (read fast until it answers again).
func (d *debouncer) unsettled(now time.Time, after time.Duration) bool {
	return d.failing() || (!d.emptySince.IsZero() && d.emptyFor(now) < after)
}

// fileSet reads a tracked file: anything but 0 (missing, unreadable) is
// set, the safe side.
func fileSet(path string) bool {
	data, err := os.ReadFile(path)
	return err != nil || strings.TrimSpace(string(data)) != "0"
}

// modTime is when path was last written, or now if it cannot be read
// (the safe side: only a master that answers later counts).
func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Now()
	}
	return fi.ModTime()
}

// holdsRecheck is how often the virtual IPs the interface holds are read
// besides when the kernel says an address changed.
const holdsRecheck = 10 * time.Second

// ownRecheck is how often the node's own addresses are read: they rarely
// change.
const ownRecheck = 30 * time.Second

// flagFile is a file keepalived tracks, holding 1 (set) or 0. It is
// written only when the value changes; prepareFiles creates it set.
type flagFile struct {
	path string
	set  bool
}

// setElsewhere tells whether someone else set the file since the last
// write: keepalived does, for the preempt hold, when it starts.
func (f *flagFile) setElsewhere() bool {
	if f.set {
		return false
	}
	data, err := os.ReadFile(f.path)
	if err != nil || strings.TrimSpace(string(data)) != "1" {
		return false
	}
	f.set = true
	return true
}

func (f *flagFile) write(set bool) (changed bool, err error) {
	if set == f.set {
		return false, nil
	}
	value := "0\n"
	if set {
		value = "1\n"
	}
	if err := os.WriteFile(f.path, []byte(value), 0o644); err != nil {
		return false, err
	}
	f.set = set
	return true, nil
}

// holdGate decides the preempt hold: a node is held until its HAProxy has
// been healthy for the whole delay, without a break.
type holdGate struct{ healthySince time.Time }

// restart starts the delay over, as if the node had just become healthy.
func (g *holdGate) restart(now time.Time) {
	if !g.healthySince.IsZero() {
		g.healthySince = now
	}
}

// liftsIn is how long until a node that serves is released (0: it is
// not serving, or not held).
func (g *holdGate) liftsIn(now time.Time, healthy bool, delay time.Duration) time.Duration {
	if !healthy || g.healthySince.IsZero() {
		return 0
	}
	return max(g.healthySince.Add(delay).Sub(now), 0)
}

func (g *holdGate) hold(now time.Time, healthy bool, delay time.Duration) bool {
	if !healthy {
		g.healthySince = time.Time{}
		return true
	}
	if g.healthySince.IsZero() {
		g.healthySince = now
	}
	return now.Sub(g.healthySince) < delay
}

// Debouncing: a slow answer under load, a socket rebound by a reload, or a
// backend flapping must not move the virtual IPs. Only a HAProxy that
// refuses connections outside a reload counts at once: it has died. Any
// other failure must last faultAfter.
const (
	faultAfter  = time.Second
	reloadGrace = 3 * time.Second
	// masterGoneRecheck: how soon HAProxy is read again while its master
	// is gone but the workers' socket still answers.
	masterGoneRecheck = 20 * time.Millisecond
)

// probe reads HAProxy's stats. answers means it did; dead means nothing
// listens on the runtime socket any more (connection refused or the
// socket is gone); why says what was wrong, for the log.
func (a *Agent) probe(ctx context.Context) (answers, dead bool, backends map[string]contract.BackendCount, why string) {
	timeout := min(a.o.HealthInterval*3, time.Second)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out, err := haproxyapi.Command(ctx, a.o.Paths.RuntimeSocket(), "show stat")
	if err != nil {
		return false, haproxyapi.Gone(err), nil, err.Error()
	}
	backends, ok := parseStats(out)
	if !ok {
		return false, false, nil, "unreadable stats"
	}
	return true, false, backends, ""
}

// anyServerUp: some backend has a server up, or there are no backends to
// have one (a LoadBalancer whose listeners only redirect still serves).
func anyServerUp(backends map[string]contract.BackendCount) bool {
	if len(backends) == 0 {
		return true
	}
	for _, b := range backends {
		if b.Up > 0 {
			return true
		}
	}
	return false
}

// parseStats counts servers up and in total per backend from `show stat`.
// Servers in maintenance (empty slots, drained) do not count.
func parseStats(out string) (map[string]contract.BackendCount, bool) {
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
	counts := map[string]contract.BackendCount{}
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
