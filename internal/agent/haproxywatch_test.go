package agent

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/testing/haproxytest"
)

// TestHAProxyDeathIsSeenAtOnce: with the stats poll an hour apart, only the
// held master CLI connection can tell the health loop that HAProxy died
// (its processes SIGKILLed together, as a container killed whole), so the
// track file turns 1 at once; it does not for a reload the agent made.
func TestHAProxyDeathIsSeenAtOnce(t *testing.T) {
	f := newSyncFixture(t)
	a := f.agent
	a.o.HealthInterval, a.o.IdleHealthInterval = time.Hour, time.Hour
	a.healthNow = make(chan struct{}, 1)
	pgid := haproxytest.Start(t, a.o.Paths.MasterSocket(), a.o.Paths.RuntimeSocket())
	ctx, cancel := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	defer func() { cancel(); loops.Wait() }() // before the files go
	loops.Go(func() { a.masterWatchLoop(ctx) })
	loops.Go(func() { a.healthLoop(ctx) })
	track := a.o.Paths.TrackFile()
	waitTrack := func(want bool, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for time.Since(start) < within {
			if fileSet(track) == want {
				return time.Since(start)
			}
			time.Sleep(time.Millisecond)
		}
		t.Fatalf("track file set=%v not seen within %v", want, within)
		return 0
	}
	waitTrack(false, 10*time.Second)

	// A reload closes the held connection too; the agent's reload grace
	// covers the moment the master refuses while it re-executes.
	a.reloadedAt.Store(time.Now().UnixNano())
	if _, err := haproxytestReload(ctx, a); err != nil {
		t.Fatal(err)
	}
	// Watched throughout, not looked at once after: a file set for a
	// moment would move the VIPs as surely as one left set.
	for start := time.Now(); time.Since(start) < time.Second; time.Sleep(time.Millisecond) {
		if fileSet(track) {
			t.Fatalf("a reload set the track file %v after it began", time.Since(start))
		}
	}
	// The master is held again (it may refuse for a while on a busy
	// machine).
	deadline := time.Now().Add(10 * time.Second)
	for a.masterGone.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)

	// Outside the reload grace, a death counts the moment it is seen.
	a.reloadedAt.Store(time.Now().Add(-time.Minute).UnixNano())
	if err := haproxytest.KillAll(pgid); err != nil {
		t.Fatal(err)
	}
	// Generous: the poll would take an hour.
	took := waitTrack(true, 5*time.Second)
	t.Logf("track file set %v after the kill", took)
}

func haproxytestReload(ctx context.Context, a *Agent) (string, error) {
	return haproxyapi.MasterCommand(ctx, a.o.Paths.MasterSocket(), "reload")
}

// TestMasterExitKeepsTrackFileSet: HAProxy's master exits and
// hakeeper-supervise haproxy sets the track file, while a worker still answers on
// the runtime socket (in CI one did for 20 ms after its master exited,
// and the agent cleared the file for that long: keepalived left FAULT for
// a HAProxy that was going). The agent keeps the file set until a new
// master answers, and a new HAProxy then clears it.
//
// A real worker outlives its master by milliseconds at most, too short
// to test against; a stand-in answering `show stat` on the runtime socket
// plays it, for as long as the test needs.
func TestMasterExitKeepsTrackFileSet(t *testing.T) {
	f := newSyncFixture(t)
	a := f.agent
	a.o.HealthInterval, a.o.IdleHealthInterval = 20*time.Millisecond, 20*time.Millisecond
	a.healthNow = make(chan struct{}, 1)
	paths := a.o.Paths
	pgid := haproxytest.Start(t, paths.MasterSocket(), paths.RuntimeSocket())
	ctx, cancel := context.WithCancel(context.Background())
	var loops sync.WaitGroup
	defer func() { cancel(); loops.Wait() }() // before the files go
	loops.Go(func() { a.masterWatchLoop(ctx) })
	loops.Go(func() { a.healthLoop(ctx) })
	track := paths.TrackFile()
	waitTrack := func(want bool, within time.Duration) {
		t.Helper()
		for start := time.Now(); time.Since(start) < within; time.Sleep(time.Millisecond) {
			if fileSet(track) == want {
				return
			}
		}
		t.Fatalf("track file set=%v not seen within %v", want, within)
	}
	waitTrack(false, 10*time.Second)
	a.reloadedAt.Store(time.Now().Add(-time.Minute).UnixNano())

	if err := haproxytest.KillAll(pgid); err != nil {
		t.Fatal(err)
	}
	lingering := answerStats(t, paths.RuntimeSocket())
	if err := os.WriteFile(track, []byte("1\n"), 0o644); err != nil { // as hakeeper-supervise haproxy does
		t.Fatal(err)
	}
	// Twenty health intervals: the worker answers every one of them.
	for start := time.Now(); time.Since(start) < 400*time.Millisecond; time.Sleep(time.Millisecond) {
		if !fileSet(track) {
			t.Fatalf("the track file was cleared %v after HAProxy's master exited, its worker answering", time.Since(start))
		}
	}
	lingering.Close()
	// The container restarted: a new HAProxy on the same sockets.
	haproxytest.Start(t, paths.MasterSocket(), paths.RuntimeSocket())
	waitTrack(false, 10*time.Second)
}

// answerStats listens on socket in place of HAProxy's runtime API and
// answers every command with the stats of a HAProxy with no backends.
func answerStats(t *testing.T, socket string) net.Listener {
	t.Helper()
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = bufio.NewReader(conn).ReadString('\n')
			_, _ = io.WriteString(conn, "# pxname,svname,status\nfe,FRONTEND,OPEN\n\n")
			conn.Close()
		}
	}()
	return l
}
