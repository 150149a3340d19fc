package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestHoldGateHoldsUntilHealthyForTheWholeDelay(t *testing.T) {
	var g holdGate
	t0 := time.Unix(1000, 0)
	delay := 10 * time.Second
	steps := []struct {
		at      time.Duration
		healthy bool
		want    bool
	}{
		{0, false, true},                // starting: HAProxy not up yet
		{1 * time.Second, true, true},   // healthy from here
		{10 * time.Second, true, true},  // 9 s healthy: still held
		{11 * time.Second, true, false}, // 10 s healthy: released
		{12 * time.Second, false, true}, // HAProxy died: held again
		{13 * time.Second, true, true},  // recovered: the delay starts over
		{22900 * time.Millisecond, true, true},
		{23 * time.Second, true, false},
	}
	for _, s := range steps {
		if got := g.hold(t0.Add(s.at), s.healthy, delay); got != s.want {
			t.Errorf("at %v healthy=%v: hold %v, want %v", s.at, s.healthy, got, s.want)
		}
	}
}

func TestHoldGateWithoutDelayFollowsHealth(t *testing.T) {
	var g holdGate
	now := time.Unix(1000, 0)
	if !g.hold(now, false, 0) || g.hold(now, true, 0) {
		t.Fatal("with no delay, only an unhealthy node is held")
	}
}

func TestFlagFileWritesOnlyChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "flag")
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := flagFile{path: path, set: true}
	for _, step := range []struct {
		set, changed bool
		content      string
	}{{true, false, "1\n"}, {false, true, "0\n"}, {false, false, "0\n"}, {true, true, "1\n"}} {
		changed, err := f.write(step.set)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		if changed != step.changed || string(data) != step.content {
			t.Errorf("write(%v): changed %v, file %q; want %v, %q", step.set, changed, data, step.changed, step.content)
		}
	}
}

func TestARestartedKeepalivedIsHeldForTheWholeDelay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "preempt.hold")
	f := flagFile{path: path, set: true}
	var g holdGate
	t0 := time.Unix(1000, 0)
	delay := 10 * time.Second
	g.hold(t0, true, delay)
	if _, err := f.write(g.hold(t0.Add(delay), true, delay)); err != nil || f.set {
		t.Fatalf("not released after the delay: set=%v err=%v", f.set, err)
	}
	if f.setElsewhere() {
		t.Fatal("the agent's own 0 read as set elsewhere")
	}
	// keepalived restarts and writes 1 (init_file 1 overwrite).
	if err := os.WriteFile(path, []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	restartAt := t0.Add(20 * time.Second)
	if !f.setElsewhere() {
		t.Fatal("keepalived's 1 went unnoticed")
	}
	g.restart(restartAt)
	if !g.hold(restartAt.Add(9*time.Second), true, delay) {
		t.Error("released before the delay after keepalived's restart")
	}
	if g.hold(restartAt.Add(delay), true, delay) {
		t.Error("still held after the delay")
	}
}

// TestDebouncerTimesFailuresWhateverTheInterval: failures and empty
// backends count from the first read that saw them, so a node read once a
// second acts on them as late as one read ten times a second, and an
// answer in between starts over.
func TestDebouncerTimesFailuresWhateverTheInterval(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type read struct {
		at               time.Duration
		answers, serving bool
		failedFor        time.Duration
		emptyFor         time.Duration
		unsettled        bool
	}
	for name, reads := range map[string][]read{
		"read once a second: a hang": {
			{0, true, true, 0, 0, false},
			{time.Second, false, false, 0, 0, true}, // the first failed read
			{1100 * time.Millisecond, false, false, 100 * time.Millisecond, 0, true},
			{2 * time.Second, false, false, time.Second, 0, true},
			{2100 * time.Millisecond, true, true, 0, 0, false},
		},
		"no server up, then one": {
			{0, true, false, 0, 0, true},
			{500 * time.Millisecond, true, false, 0, 500 * time.Millisecond, true},
			{time.Second, true, false, 0, time.Second, false}, // lowered: steady again
			{1500 * time.Millisecond, false, false, 0, 1500 * time.Millisecond, true},
			{2 * time.Second, true, true, 0, 0, false},
		},
	} {
		var d debouncer
		for _, r := range reads {
			now := t0.Add(r.at)
			d.observe(now, r.answers, r.serving)
			if got := d.failedFor(now); got != r.failedFor {
				t.Errorf("%s at %v: failed for %v, want %v", name, r.at, got, r.failedFor)
			}
			if got := d.emptyFor(now); got != r.emptyFor {
				t.Errorf("%s at %v: empty for %v, want %v", name, r.at, got, r.emptyFor)
			}
			if got := d.unsettled(now, faultAfter); got != r.unsettled {
				t.Errorf("%s at %v: unsettled %v, want %v", name, r.at, got, r.unsettled)
			}
		}
	}
}

func TestPaceReadsFastOnlyWhileUnsettled(t *testing.T) {
	fast, idle := 100*time.Millisecond, time.Second
	for _, c := range []struct {
		s    paceState
		want time.Duration
	}{
		{paceState{}, idle},
		{paceState{unsettled: true}, fast},
		{paceState{holdLifts: 300 * time.Millisecond}, 300 * time.Millisecond}, // wakes as the hold lifts
		{paceState{holdLifts: 5 * time.Second}, idle},
		{paceState{unsettled: true, holdLifts: 30 * time.Millisecond}, 30 * time.Millisecond},
		{paceState{holdLifts: time.Nanosecond}, time.Millisecond},
	} {
		if got := pace(fast, idle, c.s); got != c.want {
			t.Errorf("%+v: %v, want %v", c.s, got, c.want)
		}
	}
}

func TestHoldGateTellsWhenItLifts(t *testing.T) {
	var g holdGate
	t0 := time.Unix(1000, 0)
	delay := 10 * time.Second
	g.hold(t0, true, delay)
	if got := g.liftsIn(t0.Add(4*time.Second), true, delay); got != 6*time.Second {
		t.Errorf("lifts in %v, want 6s", got)
	}
	if got := g.liftsIn(t0.Add(4*time.Second), false, delay); got != 0 {
		t.Errorf("not serving: lifts in %v, want 0", got)
	}
	if got := g.liftsIn(t0.Add(time.Minute), true, delay); got != 0 {
		t.Errorf("lifted long ago: %v, want 0", got)
	}
}
