package agent

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/haproxyapi/haproxytest"
)

// TestHAProxyDeathIsSeenAtOnce: with the stats poll an hour apart, only the
// held master CLI connection can tell the health loop that HAProxy died
// (its processes SIGKILLed together, as a container killed whole), so the
// track file turns 1 at once; it does not for a reload the agent made.
func TestHAProxyDeathIsSeenAtOnce(t *testing.T) {
	f := newSyncFixture(t)
	a := f.agent
	a.o.HealthInterval = time.Hour
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
	time.Sleep(time.Second)
	if fileSet(track) {
		t.Fatal("a reload set the track file")
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
