package agent

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// TestRestartResumes: a restarted agent finds the tracked files as the
// last one left them, resumes from the record of what runs, reports that
// config's hash without touching the daemons when it is still wanted, and
// reloads when it is not (no HAProxy runs here, so the reload's failure
// shows it was attempted).
func TestRestartResumes(t *testing.T) {
	f := newSyncFixture(t)
	ctx := context.Background()
	f.publish(t, goodHAProxy, goodKeepalived, `{"virtualRouterID":7}`)
	if err := f.agent.sync(ctx); err != nil {
		t.Fatal(err)
	}
	// The node became healthy and released.
	for _, file := range []string{f.agent.o.Paths.TrackFile(), f.agent.o.Paths.PreemptHold()} {
		if err := os.WriteFile(file, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// The agent restarts: a new process with the same run directory.
	restarted := newSyncFixtureIn(t, f.agent.o.Paths)
	for _, file := range []string{restarted.agent.o.Paths.TrackFile(), restarted.agent.o.Paths.PreemptHold()} {
		if fileSet(file) {
			t.Errorf("the restart set %s: keepalived would take the VIPs off a healthy node", file)
		}
	}
	restarted.agent.resume(ctx)
	restarted.publish(t, goodHAProxy, goodKeepalived, `{"virtualRouterID":7}`)
	if err := restarted.agent.sync(ctx); err != nil {
		t.Fatalf("an unchanged config after a restart must need nothing: %v", err)
	}
	want := contract.NodeConfigHash([]byte(goodHAProxy), []byte(goodKeepalived))
	if got := restarted.agent.snapshot().ConfigHash; got != want {
		t.Errorf("after the restart the report says %q, want the running config's %s", got, want)
	}

	// A structural change made while the agent was down must reach
	// HAProxy: a reload, not just a file written.
	changed := strings.Replace(goodHAProxy, "timeout client 1s", "timeout client 2s", 1)
	restarted.publish(t, changed, goodKeepalived, `{"virtualRouterID":7}`)
	err := restarted.agent.sync(ctx)
	if err == nil || !strings.Contains(err.Error(), "failed to reload HAProxy") {
		t.Fatalf("got %v, want a reload attempted", err)
	}
	if got := restarted.agent.snapshot().ConfigHash; got != want {
		t.Errorf("the report moved to %s although the reload failed", got)
	}
}

// TestNewPodStartsHeld: in a new pod (no tracked files yet) both start set.
func TestNewPodStartsHeld(t *testing.T) {
	f := newSyncFixture(t)
	// Written, and written "1": fileSet alone reads a missing file as set,
	// which would pass with nothing created.
	for _, file := range []string{f.agent.o.Paths.TrackFile(), f.agent.o.Paths.NoServers(), f.agent.o.Paths.PreemptHold()} {
		data, err := os.ReadFile(file)
		if err != nil || strings.TrimSpace(string(data)) != "1" {
			t.Errorf("%s in a new pod: %q, %v; want it written as 1 (held)", file, data, err)
		}
	}
}
