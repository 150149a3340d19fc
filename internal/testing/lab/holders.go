package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hakeeper/hakeeper/internal/ifaddr"
)

// HolderSample is which nodes' interfaces carried an address from At on.
type HolderSample struct {
	At      time.Time
	Holders []string
}

// HolderWatch records which nodes carry an address, as their kernels say.
type HolderWatch struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	changes map[string][]holdChange
	nodes   []string
	err     error
}

type holdChange struct {
	at    time.Time
	holds bool
}

// WatchHolders looks at addr on every node's eth0 every interval (5 ms is
// fine: netlink from a thread inside each node's namespace, no process
// per look) until Stop, or for at most limit.
func (l *Lab) WatchHolders(addr string, interval, limit time.Duration) *HolderWatch {
	w := &HolderWatch{stop: make(chan struct{}), changes: map[string][]holdChange{}}
	for _, n := range l.nodes {
		w.nodes = append(w.nodes, n.name)
		w.wg.Add(1)
		go w.watch(n.name, filepath.Join("/run/netns", l.net.ns(n.name)), addr, interval, limit)
	}
	return w
}

func (w *HolderWatch) watch(node, netns, addr string, interval, limit time.Duration) {
	defer w.wg.Done()
	fail := func(err error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.err == nil {
			w.err = fmt.Errorf("%s: %w", node, err)
		}
	}
	// This thread enters the node's namespace and is never unlocked: Go
	// retires it when the goroutine ends, namespace and all.
	runtime.LockOSThread()
	f, err := os.Open(netns)
	if err != nil {
		fail(err)
		return
	}
	err = unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
	f.Close()
	if err != nil {
		fail(err)
		return
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	end := time.After(limit)
	last := false
	for first := true; ; first = false {
		now := time.Now()
		holds := len(ifaddr.Held("eth0", []string{addr})) == 1
		if first || holds != last {
			w.mu.Lock()
			w.changes[node] = append(w.changes[node], holdChange{at: now, holds: holds})
			w.mu.Unlock()
			last = holds
		}
		select {
		case <-w.stop:
			return
		case <-end:
			return
		case <-tick.C:
		}
	}
}

// Stop ends the watch and returns the holders over time: what held once
// every node had been looked at, then one sample each time the set of
// holders changed, in order.
func (w *HolderWatch) Stop() ([]HolderSample, error) {
	close(w.stop)
	w.wg.Wait()
	type event struct {
		holdChange
		node string
	}
	var events []event
	var start time.Time
	for node, cs := range w.changes {
		for _, c := range cs {
			events = append(events, event{c, node})
		}
		if len(cs) > 0 && cs[0].at.After(start) {
			start = cs[0].at
		}
	}
	slices.SortFunc(events, func(a, b event) int { return a.at.Compare(b.at) })
	holding := map[string]bool{}
	var out []HolderSample
	for _, e := range events {
		holding[e.node] = e.holds
		if e.at.Before(start) {
			continue
		}
		var holders []string
		for _, n := range w.nodes {
			if holding[n] {
				holders = append(holders, n)
			}
		}
		if len(out) > 0 && slices.Equal(out[len(out)-1].Holders, holders) {
			continue
		}
		out = append(out, HolderSample{At: e.at, Holders: holders})
	}
	return out, w.err
}
