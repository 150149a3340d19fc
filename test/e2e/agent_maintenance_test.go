package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestMaintenanceHandsOver: the master is cordoned (as `kubectl drain`
// starts), then, separately, annotated hakeeper.io/maintenance=true, under
// a client probing every 10 ms. Each time its claim drops to the lowest
// priority and node-b, preempting, takes the VIP while node-a's HAProxy
// still serves: a planned move, not a failure. Back
// in service, node-a takes the VIP back by preemption. No request is
// refused or times out; one in flight at a switch may be reset.
func TestMaintenanceHandsOver(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	lb := variant("maintenance", addr)
	createAndWait(t, l, lb)
	kubectl := func(args ...string) func() error {
		return func() error {
			out, err := l.Kubectl(ctx, args...)
			if err != nil {
				return fmt.Errorf("kubectl %v: %v: %s", args, err, out)
			}
			return nil
		}
	}
	a := lab.NodeName(0)
	t.Cleanup(func() {
		_ = kubectl("uncordon", a)()
		_ = kubectl("annotate", "node", a, v1alpha1.AnnotationMaintenance+"-")()
	})
	for _, how := range []struct {
		name    string
		on, off func() error
	}{
		{"cordon", kubectl("cordon", a), kubectl("uncordon", a)},
		{"annotation", kubectl("annotate", "node", a, v1alpha1.AnnotationMaintenance+"=true"),
			kubectl("annotate", "node", a, v1alpha1.AnnotationMaintenance+"-")},
	} {
		t.Run(how.name, func(t *testing.T) {
			settledHealthy(t, l, lb)
			probe := l.NewClient(time.Second).StartProbe("http://"+addr+"/", 10*time.Millisecond, 3*time.Minute)
			watch := l.WatchHolders(addr, 5*time.Millisecond, 3*time.Minute)
			holdsAlone := func(node string) func() error {
				return func() error {
					if h := currentHolders(l, addr); !slices.Equal(h, []string{node}) {
						return fmt.Errorf("holders %v", h)
					}
					return nil
				}
			}
			start := time.Now()
			if err := how.on(); err != nil {
				probe.Stop()
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "node-b holding the VIP alone", holdsAlone(lab.NodeName(1)))
			moved := time.Since(start)
			waitActive(t, l, lb, lab.NodeName(1), 30*time.Second)
			shown := time.Since(start)
			time.Sleep(time.Second)
			back := time.Now()
			if err := how.off(); err != nil {
				probe.Stop()
				t.Fatal(err)
			}
			eventually(t, 30*time.Second, "node-a holding the VIP alone again", holdsAlone(a))
			returned := time.Since(back)
			waitActive(t, l, lb, a, 30*time.Second)
			time.Sleep(time.Second)
			samples, err := watch.Stop()
			outage, ok, failed := probe.Stop()
			if err != nil {
				t.Fatal(err)
			}
			spans := between(samples, start, time.Now())
			t.Logf("holders: %s", describeHolders(spans, start))
			// A handover may show an instant with no holder: the old master
			// removes the VIP on the new one's first advert, a few
			// milliseconds before the new one's address change is seen
			// here (looks are 5 ms apart). The client's figures below are
			// the measure; a longer gap would be a failover, not a handover.
			for _, s := range spans {
				if len(s.holders) == 0 && s.d > 50*time.Millisecond {
					t.Errorf("no node held the VIP at +%v for %v", s.at.Sub(start).Round(time.Millisecond), s.d.Round(time.Millisecond))
				}
			}
			t.Logf("%s: node-b held the VIP alone after %v, status named it after %v; back in service node-a held it alone after %v; "+
				"client: %d answered, %d failed, longest outage %.3fs",
				how.name, moved.Round(time.Millisecond), shown.Round(100*time.Millisecond), returned.Round(time.Millisecond), ok, failed, outage.Seconds())
			// Out and back: two planned moves.
			lostOnlyInFlight(t, probe, failed, 2)
		})
	}
}

// lostOnlyInFlight fails the test unless every failed request was reset in
// flight at one of the planned moves of the VIP, at most one per move: its
// packets reach the new master, whose kernel knows no such connection,
// the one loss a move of the VIP cannot avoid. A refusal or a timeout is
// a gap in service.
func lostOnlyInFlight(t *testing.T, probe *lab.Probe, failed, moves int) {
	t.Helper()
	resets := 0
	for _, e := range probe.Errors() {
		if strings.Contains(e, "connection reset by peer") {
			resets++
		}
	}
	if failed > resets || resets > moves {
		t.Errorf("%d requests failed (%d reset in flight, at most one per planned move, %d moves): %v", failed, resets, moves, probe.Errors())
	}
}

// explainLoss logs, after requests were lost, what the nodes logged since:
// when each outage began, the VRRP events and container restarts (a move
// of the address), and the sessions HAProxy did not end cleanly (a server
// that refused or did not answer), to tell which of them lost a request.
func explainLoss(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, probe *lab.Probe, since time.Time) {
	t.Helper()
	for _, o := range probe.Outages() {
		t.Logf("outage at %s for %.3fs", o.Start.UTC().Format("15:04:05.000"), o.Duration.Seconds())
	}
	events, err := l.VRRPEvents(ctx, lb, since)
	t.Logf("VRRP events since %s (%v):\n%s", since.UTC().Format("15:04:05.000"), err, events)
	trouble, err := l.ProxyTrouble(ctx, lb, since)
	t.Logf("sessions HAProxy did not end cleanly (%v):\n%s", err, trouble)
}
