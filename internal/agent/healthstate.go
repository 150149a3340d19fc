package agent

import "time"

// healthInput is what one pass of the health loop observed.
type healthInput struct {
	now time.Time
	// answers: HAProxy's workers answered the stats read; dead: nothing
	// listens on their socket any more; serving: a server is up in some
	// backend (only meaningful when answers); why: what the read said
	// was wrong.
	answers, dead, serving bool
	why                    string
	// trackSet is the track file as the loop last wrote it or found it.
	trackSet bool
	// masterExitedAt is when hakeeper-supervise haproxy set the track
	// file because HAProxy's master exited (zero: it did not since the
	// last pass).
	masterExitedAt time.Time
	// masterHeldAt is when the master CLI connection open now was begun;
	// masterGone, that the master CLI refuses connections.
	masterHeldAt time.Time
	masterGone   bool
	lastReload   time.Time
	// holdRestarted: keepalived restarted (it set the preempt hold file
	// itself), so the delay starts over.
	holdRestarted bool
	delay         time.Duration
	// fast and idle are the two read intervals.
	fast, idle time.Duration
}

// healthDecision is what the pass writes and how long it waits.
type healthDecision struct {
	// faulty sets the track file: keepalived leaves the VRRP group;
	// died says HAProxy is gone (refused connections, its master exited)
	// rather than slow to answer.
	faulty, died bool
	why          string
	// noServers sets the no-servers file (the lowest priority); decided
	// only while HAProxy answers, otherwise the file stays as it was.
	noServers        bool
	noServersDecided bool
	// serves: HAProxy healthy and a server up, as reported.
	serves bool
	// held sets the preempt hold file.
	held bool
	// wait is how long until the next read.
	wait time.Duration
}

// healthMachine holds what the health loop remembers between passes; step
// is all of its decisions, with no I/O, so every transition the lab found
// has a table test (healthstate_test.go).
type healthMachine struct {
	debounce debouncer
	// masterExited: when hakeeper-supervise haproxy set the track file;
	// zero once a new master answered.
	masterExited time.Time
	gate         holdGate
}

// newHealthMachine starts a machine; a node found released (its hold file
// 0, from an agent that ran before) stays released while HAProxy is
// healthy, as if the delay had long passed.
func newHealthMachine(released bool) *healthMachine {
	m := &healthMachine{}
	if released {
		m.gate.healthySince = time.Unix(1, 0)
	}
	return m
}

// step decides the track and no-servers files from one read. The bounds
// (faultAfter, reloadGrace) are health.go's.
func (m *healthMachine) step(in healthInput) healthDecision {
	now := in.now
	m.debounce.observe(now, in.answers, in.serving)
	d := healthDecision{why: in.why}
	// A refused connection outside a reload is a death: at once. Any
	// other failure must last faultAfter.
	d.faulty = m.debounce.failing() && (in.dead && now.Sub(in.lastReload) > reloadGrace || m.debounce.failedFor(now) >= faultAfter)
	d.died = d.faulty && in.dead
	// A HAProxy whose master is gone may still answer for a moment
	// through a worker that outlives it, and a set file must not flip
	// back to healthy for that moment: keepalived would leave FAULT for a
	// HAProxy that is going, and might take the VIPs. So a set file stays
	// set while the master CLI refuses, and, once hakeeper-supervise
	// haproxy has set it (it does when HAProxy's master exits; a reload
	// re-executes the master in place), until a connection begun after
	// that exit reaches a master: the master CLI watch may not have seen
	// the exit yet. The read then decides as for any start.
	if !in.masterExitedAt.IsZero() {
		m.masterExited = in.masterExitedAt
	}
	if !m.masterExited.IsZero() && in.masterHeldAt.After(m.masterExited) {
		m.masterExited = time.Time{}
	}
	switch {
	case !m.masterExited.IsZero():
		d.faulty, d.died, d.why = true, true, "HAProxy's master exited (hakeeper-supervise haproxy set the track file) and no new one answers yet"
	case in.trackSet && in.masterGone:
		d.faulty, d.died, d.why = true, true, "HAProxy's master CLI refuses connections"
	}
	// Debounced as any other failure: a reload or one slow check round
	// must not move the VIP. While HAProxy does not answer the file stays
	// as it was; the node is in FAULT anyway.
	if in.answers {
		d.noServersDecided = true
		d.noServers = m.debounce.emptyFor(now) >= faultAfter
	}
	return d
}

// settle decides, once the track and no-servers files are written
// (trackSet and noServersSet are what they hold now), the preempt hold:
// the delay counts from when the node serves again (HAProxy up and a
// server up); and how long the loop waits.
func (m *healthMachine) settle(in healthInput, d *healthDecision, trackSet, noServersSet bool) {
	now := in.now
	d.serves = !d.faulty && !noServersSet
	if in.holdRestarted {
		m.gate.restart(now)
	}
	d.held = m.gate.hold(now, d.serves, in.delay)
	d.wait = pace(in.fast, in.idle, paceState{
		unsettled: m.debounce.unsettled(now, faultAfter) || trackSet || in.masterGone ||
			now.Sub(in.lastReload) < reloadGrace,
		holdLifts: m.gate.liftsIn(now, d.serves, in.delay),
	})
	// The master gone while HAProxy still answers: a worker outliving it
	// for a moment, or the master re-executing for a reload. Look again
	// soon; only what the workers' socket says decides, as for any death.
	if in.masterGone && !d.faulty {
		d.wait = min(d.wait, masterGoneRecheck)
	}
}

// The faults a node reports, in the words the operator's events use
// ("node-b now holds 198.18.0.111 (was node-a: HAProxy died)").
const (
	faultHAProxyDied      = "HAProxy died"
	faultHAProxyHung      = "HAProxy stopped answering"
	faultNoServers        = "no server up"
	faultUnderMaintenance = "under maintenance"
)

// fault says why the node does not claim the virtual IPs at its own
// priority, the first of: HAProxy down (the node goes FAULT), no server up
// (the lowest priority), maintenance; "" when it claims them. What the
// files keepalived tracks say, once written. The preempt hold is no fault:
// a node keeps the addresses it holds through its own hold (every node of
// a new LoadBalancer starts held), and one held while another holds them
// has not lost them.
func fault(d healthDecision, noServersSet, maintenanceSet bool) string {
	switch {
	case d.faulty && d.died:
		return faultHAProxyDied
	case d.faulty:
		return faultHAProxyHung
	case noServersSet:
		return faultNoServers
	case maintenanceSet:
		return faultUnderMaintenance
	}
	return ""
}
