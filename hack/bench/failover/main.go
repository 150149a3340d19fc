// Command failover measures the outage a client sees when the master of a
// virtual IP fails, for hakeeper and, in the same run on the same lab
// network with the same probe, for hand-written HAProxy + Keepalived pairs
// configured as the common tutorials do and as an operator tunes them by
// hand (see pairTunings).
//
// The lab is three real nodes (kubelets, containerd, the built images);
// the pairs run on node-a (master) and node-b (backup) outside Kubernetes.
// Each system gets its own probe from the lab's client: a new connection
// every 10 ms, a request failing after -timeout. A run's outage is the
// first run of failed requests after the fault, from the start of the
// first failed request to the first answer. Scenarios, each -runs times:
//
//   - HAProxy dies on the master: its processes SIGKILLed together (for
//     hakeeper, the HAProxy container), one system at a time;
//   - the master leaves the network: node-a's link goes down, which every
//     system sees at once.
//
// It prints the median and worst outage per scenario and system.
//
// With -adverts it measures hakeeper alone at several advert intervals
// instead: the link-down outage, and false failovers while the master is
// overloaded (see adverts).
//
//	make bench-failover RUNS=5
//	make bench-adverts ADVERTS=50,30,20
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

func main() {
	lab.MaybeRunBackend()
	runs := flag.Int("runs", 5, "runs of each scenario")
	timeout := flag.Duration("timeout", 20*time.Millisecond, "a probe request fails after this long")
	pairs := flag.Bool("pairs", true, "compare with hand-written HAProxy + Keepalived pairs")
	advertList := flag.String("adverts", "", "instead: hakeeper's link-down outage and false failovers under overload at each of these advert intervals (ms, comma-separated)")
	overload := flag.Duration("overload", time.Minute, "with -adverts: how long the master is overloaded")
	flag.Parse()
	var intervals []int
	for _, f := range strings.FieldsFunc(*advertList, func(r rune) bool { return r == ',' }) {
		ms, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench failover: -adverts:", err)
			os.Exit(2)
		}
		intervals = append(intervals, ms)
	}
	ctrl.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, *runs, *timeout, *pairs && len(intervals) == 0, intervals, *overload)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench failover:", err)
		os.Exit(1)
	}
}

// system is one way of running a highly available VIP on node-a and
// node-b.
type system interface {
	name() string
	url() string
	address() string
	killHAProxy(context.Context) error
	// restoreHAProxy brings node-a back and waits until it holds the VIP.
	restoreHAProxy(context.Context) error
	waitBack(context.Context) error
	stop()
	logTail(node int) string
}

const probeInterval = 10 * time.Millisecond

func run(ctx context.Context, runs int, timeout time.Duration, withPairs bool, intervals []int, overload time.Duration) error {
	dir, err := os.MkdirTemp("", "hakeeper-bench-failover")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	l, err := lab.Start(ctx, lab.Config{Nodes: 3, Backends: 2, Dir: dir,
		NodeLabels: map[string]string{"hakeeper.io/edge": "true"}})
	if err != nil {
		return err
	}
	defer l.Close()

	h := newHakeeper(l)
	systems := []system{h}
	if err := h.start(ctx); err != nil {
		return err
	}
	defer h.stop()
	if len(intervals) > 0 {
		printMachine(timeout, runs)
		return adverts(ctx, l, h, intervals, runs, timeout, overload)
	}
	if withPairs {
		for i, t := range pairTunings {
			p := newPair(l, dir, i, t)
			defer p.stop()
			if err := p.start(ctx); err != nil {
				return fmt.Errorf("%s: %w\n%s%s", p.name(), err, p.logTail(0), p.logTail(1))
			}
			systems = append(systems, p)
		}
	}
	printMachine(timeout, runs)

	results := map[string]map[string][]time.Duration{} // scenario, system: outages
	record := func(scenario string, s system, d time.Duration) {
		if results[scenario] == nil {
			results[scenario] = map[string][]time.Duration{}
		}
		results[scenario][s.name()] = append(results[scenario][s.name()], d)
		fmt.Printf("  %-28s %-44s %.3f s\n", scenario, s.name(), d.Seconds())
	}
	const haproxyDies, linkDown = "HAProxy dies on the master", "the master leaves the network"
	for r := range runs {
		fmt.Printf("run %d of %d\n", r+1, runs)
		for _, s := range systems {
			outages, err := measure(ctx, l, []system{s}, timeout, func() error { return s.killHAProxy(ctx) })
			if err != nil {
				return fmt.Errorf("%s, %s: %w\n%s", haproxyDies, s.name(), err, s.logTail(0))
			}
			record(haproxyDies, s, outages[0])
			if err := s.restoreHAProxy(ctx); err != nil {
				return fmt.Errorf("%s, %s, restoring: %w\n%s", haproxyDies, s.name(), err, s.logTail(0))
			}
		}
		outages, err := measure(ctx, l, systems, timeout, func() error { return l.SetLink(lab.NodeName(0), false) })
		if err := errors.Join(err, l.SetLink(lab.NodeName(0), true)); err != nil {
			return fmt.Errorf("%s: %w", linkDown, err)
		}
		for i, s := range systems {
			record(linkDown, s, outages[i])
		}
		for _, s := range systems {
			if err := s.waitBack(ctx); err != nil {
				return fmt.Errorf("%s, %s, coming back: %w\n%s", linkDown, s.name(), err, s.logTail(0))
			}
		}
	}

	fmt.Printf("\n%-30s %-44s %8s %8s  %s\n", "scenario", "system", "median", "worst", "runs (s)")
	for _, scenario := range []string{haproxyDies, linkDown} {
		for _, s := range systems {
			ds := results[scenario][s.name()]
			fmt.Printf("%-30s %-44s %7.3fs %7.3fs  %s\n", scenario, s.name(), median(ds).Seconds(), slices.Max(ds).Seconds(), list(ds))
		}
	}
	return nil
}

// measure probes every system, applies the fault, waits until node-b has
// taken each system's VIP over and it has answered a second in a row, and
// returns each system's outage: the first run of failed requests after
// the fault. A later one, when node-a takes the VIP back, is not counted.
func measure(ctx context.Context, l *lab.Lab, systems []system, timeout time.Duration, fault func() error) ([]time.Duration, error) {
	probes := make([]*lab.Probe, len(systems))
	for i, s := range systems {
		probes[i] = l.NewClient(timeout).StartProbe(s.url(), probeInterval, 2*time.Minute)
	}
	stopAll := func() {
		for _, p := range probes {
			p.Stop()
		}
	}
	// Quiet before the fault: every VIP has answered a second in a row.
	for i, s := range systems {
		if err := waitUntil(ctx, 30*time.Second, s.name()+" answering before the fault", func() bool {
			return probes[i].Streak() >= 100
		}); err != nil {
			stopAll()
			return nil, err
		}
	}
	faultAt := time.Now()
	if err := fault(); err != nil {
		stopAll()
		return nil, err
	}
	for i, s := range systems {
		// node-b has taken over (node-a may already have taken the VIP
		// back: the kubelet restarts a killed container at once the first
		// time) and the VIP has answered a second in a row since.
		tookOver := false
		err := waitUntil(ctx, time.Minute, s.name()+" on node-b", func() bool {
			tookOver = tookOver || l.HoldsVIP(lab.NodeName(1), s.address())
			return tookOver && probes[i].Streak() >= 100
		})
		if err != nil {
			stopAll()
			return nil, err
		}
	}
	outages := make([]time.Duration, len(systems))
	for i, p := range probes {
		p.Stop()
		if before := failedBefore(p, faultAt); before > 0 {
			// Not the failover's: the probe's own noise on this machine.
			fmt.Printf("  (%s: %d requests failed before the fault: %v)\n", systems[i].name(), before, p.Errors())
		}
		for _, o := range p.Outages() {
			// A request sent just before the fault may be the first to fail.
			if o.Start.After(faultAt.Add(-timeout - probeInterval)) {
				outages[i] = o.Duration
				break
			}
		}
	}
	return outages, nil
}

// failedBefore counts the outages that started before the fault.
func failedBefore(p *lab.Probe, faultAt time.Time) int {
	n := 0
	for _, o := range p.Outages() {
		if o.Start.Before(faultAt.Add(-probeInterval)) {
			n++
		}
	}
	return n
}

func waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// answers: the URL answers through the VIP from the lab's client.
func answers(l *lab.Lab, url string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := l.NewClient(time.Second).Get(ctx, url, "")
	return err == nil
}

func printMachine(timeout time.Duration, runs int) {
	version := func(argv ...string) string {
		out, _ := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		first, _, _ := strings.Cut(string(out), "\n")
		return strings.TrimSpace(first)
	}
	fmt.Printf("%s; %d CPUs; %s; %s; %s\n", time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(),
		version("uname", "-r"), version("haproxy", "-v"), version("keepalived", "--version"))
	fmt.Printf("probe: a new connection every %v, failed after %v; %d runs per scenario\n", probeInterval, timeout, runs)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func list(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprintf("%.3f", d.Seconds())
	}
	return strings.Join(parts, " ")
}
