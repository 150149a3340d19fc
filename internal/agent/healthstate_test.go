package agent

import (
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// pass is one read of a scenario: what was observed at an offset from the
// start, and what the machine must decide.
type pass struct {
	at   time.Duration
	edit func(*healthInput)
	// want: faulty, noServers (nil: not decided), held, and the wait.
	faulty    bool
	noServers *bool
	held      bool
	wait      time.Duration
}

var (
	yes = ptrTo(true)
	no  = ptrTo(false)
)

func ptrTo[T any](v T) *T { return &v }

// healthy is a read of a HAProxy that answers with a server up.
func healthy(in *healthInput) { in.answers, in.serving = true, true }

// TestHealthMachineTransitions walks the transitions the lab scenarios
// found, each as the reads the loop would make, through the machine alone:
// no HAProxy, no files, no sleeps.
func TestHealthMachineTransitions(t *testing.T) {
	const fast, idle = 100 * time.Millisecond, time.Second
	t0 := time.Unix(1000, 0)
	noop := func(*healthInput) {}
	for _, sc := range []struct {
		name     string
		released bool // the agent found its node released (restarted agent)
		delay    time.Duration
		passes   []pass
	}{
		{
			name:     "steady: healthy, released, read every idle interval",
			released: true,
			passes: []pass{
				{at: 0, edit: healthy, noServers: no, wait: idle},
				{at: time.Second, edit: healthy, noServers: no, wait: idle},
			},
		},
		{
			name:     "a death outside a reload: faulty at once, read fast until it answers",
			released: true,
			passes: []pass{
				{at: 0, edit: healthy, noServers: no, wait: idle},
				{at: time.Second, edit: func(in *healthInput) { in.dead = true }, faulty: true, held: true, wait: fast},
				// Answers again: steady at once (the delay is 0).
				{at: 1100 * time.Millisecond, edit: healthy, noServers: no, held: false, wait: idle},
			},
		},
		{
			name:     "refused within a reload's grace: debounced like any failure",
			released: true,
			passes: []pass{
				{at: 0, edit: func(in *healthInput) { in.dead, in.lastReload = true, t0 }, faulty: false, held: false, wait: fast},
				{at: 500 * time.Millisecond, edit: func(in *healthInput) { in.dead, in.lastReload = true, t0 }, faulty: false, wait: fast},
				{at: time.Second, edit: func(in *healthInput) { in.dead, in.lastReload = true, t0 }, faulty: true, held: true, wait: fast},
			},
		},
		{
			name:     "slow answers: faulty only once they have failed for faultAfter",
			released: true,
			passes: []pass{
				{at: 0, edit: noop, faulty: false, wait: fast},
				{at: 900 * time.Millisecond, edit: noop, faulty: false, wait: fast},
				{at: 1000 * time.Millisecond, edit: noop, faulty: true, held: true, wait: fast},
			},
		},
		{
			name:     "the master exited: faulty while workers answer, until a later connection reaches a new master",
			released: true,
			passes: []pass{
				{at: 0, edit: func(in *healthInput) {
					healthy(in)
					in.trackSet, in.masterExitedAt, in.masterHeldAt = true, t0.Add(-10*time.Millisecond), t0.Add(-time.Second)
				}, faulty: true, noServers: no, held: true, wait: fast},
				// The latch holds without being told again, master CLI up
				// or not: a connection from before the exit proves nothing.
				{at: 100 * time.Millisecond, edit: func(in *healthInput) {
					healthy(in)
					in.trackSet, in.masterHeldAt = true, t0.Add(-time.Second)
				}, faulty: true, noServers: no, held: true, wait: fast},
				{at: 200 * time.Millisecond, edit: func(in *healthInput) {
					healthy(in)
					in.trackSet, in.masterHeldAt = true, t0.Add(150*time.Millisecond)
				}, faulty: false, noServers: no, held: false, wait: idle},
			},
		},
		{
			name:     "a worker outlives its master: a set file stays set while the master CLI refuses",
			released: true,
			passes: []pass{
				{at: 0, edit: func(in *healthInput) { healthy(in); in.trackSet, in.masterGone = true, true }, faulty: true, noServers: no, held: true, wait: fast},
				{at: 100 * time.Millisecond, edit: func(in *healthInput) { healthy(in); in.trackSet = true }, faulty: false, noServers: no, wait: idle},
			},
		},
		{
			name:     "the master gone but nothing set: read again within masterGoneRecheck",
			released: true,
			passes: []pass{
				{at: 0, edit: func(in *healthInput) { healthy(in); in.masterGone = true }, noServers: no, wait: masterGoneRecheck},
			},
		},
		{
			name:     "no server up: the no-servers file only after faultAfter, undecided while HAProxy does not answer",
			released: true,
			passes: []pass{
				{at: 0, edit: func(in *healthInput) { in.answers = true }, noServers: no, wait: fast},
				{at: 500 * time.Millisecond, edit: noop, faulty: false, wait: fast},
				{at: 700 * time.Millisecond, edit: func(in *healthInput) { in.answers = true }, noServers: no, wait: fast},
				{at: time.Second, edit: func(in *healthInput) { in.answers = true }, noServers: yes, held: true, wait: idle},
				{at: 2 * time.Second, edit: healthy, noServers: no, held: false, wait: idle},
			},
		},
		{
			name:  "a new pod is held until it has served for the delay; the loop wakes when the hold lifts",
			delay: 3 * time.Second,
			passes: []pass{
				// HAProxy not started: its socket is not there yet.
				{at: 0, edit: func(in *healthInput) { in.dead = true }, faulty: true, held: true, wait: fast},
				{at: time.Second, edit: healthy, noServers: no, held: true, wait: idle},
				{at: 2500 * time.Millisecond, edit: healthy, noServers: no, held: true, wait: idle},
				{at: 3500 * time.Millisecond, edit: healthy, noServers: no, held: true, wait: 500 * time.Millisecond},
				{at: 4 * time.Second, edit: healthy, noServers: no, held: false, wait: idle},
			},
		},
		{
			name:     "keepalived restarted: the delay starts over",
			released: true, delay: 2 * time.Second,
			passes: []pass{
				{at: 0, edit: healthy, noServers: no, held: false, wait: idle},
				{at: time.Second, edit: func(in *healthInput) { healthy(in); in.holdRestarted = true }, noServers: no, held: true, wait: idle},
				{at: 2500 * time.Millisecond, edit: healthy, noServers: no, held: true, wait: 500 * time.Millisecond},
				{at: 3 * time.Second, edit: healthy, noServers: no, held: false, wait: idle},
			},
		},
	} {
		t.Run(sc.name, func(t *testing.T) {
			m := newHealthMachine(sc.released)
			trackSet, noServersSet := false, false
			for i, p := range sc.passes {
				in := healthInput{now: t0.Add(p.at), delay: sc.delay, fast: fast, idle: idle, trackSet: trackSet}
				p.edit(&in)
				d := m.step(in)
				trackSet = d.faulty
				if d.noServersDecided {
					noServersSet = d.noServers
				}
				m.settle(in, &d, trackSet, noServersSet)
				var gotNoServers *bool
				if d.noServersDecided {
					gotNoServers = &d.noServers
				}
				if d.faulty != p.faulty || (gotNoServers == nil) != (p.noServers == nil) ||
					(gotNoServers != nil && *gotNoServers != *p.noServers) || d.held != p.held || d.wait != p.wait {
					t.Errorf("pass %d at %v: faulty %v, noServers %v, held %v, wait %v; want %v, %v, %v, %v (%s)",
						i, p.at, d.faulty, show(gotNoServers), d.held, d.wait, p.faulty, show(p.noServers), p.held, p.wait, d.why)
				}
			}
		})
	}
}

func show(b *bool) string {
	if b == nil {
		return "undecided"
	}
	if *b {
		return "set"
	}
	return "clear"
}

// TestNextRole: only keepalived's word is a transition; a role learned
// from the node fills in an unknown one only; keepalived gone makes it
// unknown.
func TestNextRole(t *testing.T) {
	const (
		master  = v1alpha1.VRRPRoleMaster
		backup  = v1alpha1.VRRPRoleBackup
		fault   = v1alpha1.VRRPRoleFault
		unknown = v1alpha1.VRRPRoleUnknown
	)
	for _, c := range []struct {
		current    v1alpha1.VRRPRole
		event      roleEvent
		want       v1alpha1.VRRPRole
		transition bool
	}{
		{unknown, roleEvent{notified, master}, master, true},
		{master, roleEvent{notified, master}, master, false},
		{master, roleEvent{notified, fault}, fault, true},
		{"", roleEvent{learned, backup}, backup, false},
		{unknown, roleEvent{learned, master}, master, false},
		{backup, roleEvent{learned, master}, backup, false}, // keepalived notified since: its word stands
		{unknown, roleEvent{learned, unknown}, unknown, false},
		{master, roleEvent{source: keepalivedGone}, unknown, false},
		{unknown, roleEvent{source: keepalivedGone}, unknown, false},
	} {
		if got, transition := nextRole(c.current, c.event); got != c.want || transition != c.transition {
			t.Errorf("%q after %+v: %q (transition %v), want %q (%v)", c.current, c.event, got, transition, c.want, c.transition)
		}
	}
}

// TestFaultWords: what the report says of a node that does not claim the
// virtual IPs, which the operator's VIP-move event quotes.
func TestFaultWords(t *testing.T) {
	t0 := time.Unix(1000, 0)
	decide := func(passes ...func(*healthInput)) healthDecision {
		m := newHealthMachine(true)
		var d healthDecision
		for i, edit := range passes {
			in := healthInput{now: t0.Add(time.Duration(i) * faultAfter), fast: 100 * time.Millisecond, idle: time.Second}
			edit(&in)
			d = m.step(in)
		}
		return d
	}
	dead := func(in *healthInput) { in.dead = true }
	slow := func(in *healthInput) {}
	exited := func(in *healthInput) {
		healthy(in)
		in.trackSet, in.masterExitedAt, in.masterHeldAt = true, in.now.Add(-time.Millisecond), in.now.Add(-time.Second)
	}
	for _, c := range []struct {
		name                   string
		d                      healthDecision
		noServers, maintenance bool
		want                   string
	}{
		{"refused connections", decide(healthy, dead), false, false, faultHAProxyDied},
		{"its master exited while a worker answers", decide(healthy, exited), false, false, faultHAProxyDied},
		{"no answer for faultAfter", decide(slow, slow), false, false, faultHAProxyHung},
		{"HAProxy down wins over the rest", decide(healthy, dead), true, true, faultHAProxyDied},
		{"no server up", decide(healthy), true, true, faultNoServers},
		{"maintenance", decide(healthy), false, true, faultUnderMaintenance},
		{"claims them", decide(healthy), false, false, ""},
	} {
		if got := fault(c.d, c.noServers, c.maintenance); got != c.want {
			t.Errorf("%s: %q, want %q (%s)", c.name, got, c.want, c.d.why)
		}
	}
}
