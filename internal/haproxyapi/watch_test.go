package haproxyapi_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/testing/haproxytest"
)

func startHAProxy(t *testing.T) (master string, pgid int) {
	dir := t.TempDir()
	master = filepath.Join(dir, "master.sock")
	return master, haproxytest.Start(t, master, filepath.Join(dir, "runtime.sock"))
}

// TestHoldMasterEndsWithTheMaster: the held connection stays open while
// HAProxy runs, ends at a reload (after which the master accepts again)
// and ends when HAProxy is killed (after which it is refused).
func TestHoldMasterEndsWithTheMaster(t *testing.T) {
	master, pgid := startHAProxy(t)
	ctx := context.Background()
	closed, err := haproxyapi.HoldMaster(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
		t.Fatal("the connection ended while HAProxy runs")
	case <-time.After(300 * time.Millisecond):
	}

	if _, err := haproxyapi.MasterCommand(ctx, master, "reload"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived a reload")
	}
	// Refused for a moment while the master re-executes.
	deadline := time.Now().Add(5 * time.Second)
	for closed, err = haproxyapi.HoldMaster(ctx, master); err != nil; closed, err = haproxyapi.HoldMaster(ctx, master) {
		if time.Now().After(deadline) {
			t.Fatalf("no master after the reload: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	killed := time.Now()
	if err := haproxytest.KillAll(pgid); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
		t.Logf("the connection ended %v after the kill", time.Since(killed))
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived HAProxy")
	}
	if _, err := haproxyapi.HoldMaster(ctx, master); !haproxyapi.Gone(err) {
		t.Errorf("after the kill: %v, want it refused or reset", err)
	}
}

// TestHoldMasterStopsWithContext: ending ctx closes the connection.
func TestHoldMasterStopsWithContext(t *testing.T) {
	master, _ := startHAProxy(t)
	ctx, cancel := context.WithCancel(context.Background())
	closed, err := haproxyapi.HoldMaster(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection outlived its context")
	}
}
