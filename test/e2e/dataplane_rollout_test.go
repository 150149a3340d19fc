package e2e

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestRolloutHandsOverLast rolls a LoadBalancer's data plane to a new
// image (its class's dataPlane.image, a new tag of the built image in
// every node's containerd) on three real nodes, under a client probing
// the VIP every 10 ms. The operator replaces the pods itself: node-b's and
// node-c's first, then node-a's, the master, only after it has handed the
// VIP over to node-b; back with the new image, node-a takes it back by
// preemption. No request is refused or times out; one in flight at each
// of the two planned moves may be reset.
func TestRolloutHandsOverLast(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	labClass := &v1alpha1.LoadBalancerClass{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: lab.ClassName}, labClass); err != nil {
		t.Fatal(err)
	}
	class := &v1alpha1.LoadBalancerClass{ObjectMeta: metav1.ObjectMeta{Name: "rollout"}, Spec: *labClass.Spec.DeepCopy()}
	if err := l.Client.Create(ctx, class); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, class) })
	lb := variant("rollout", addr)
	lb.Spec.ClassName = class.Name
	createAndWait(t, l, lb)
	settledHealthy(t, l, lb)
	_, image, err := l.TagImages(ctx, "rollout")
	if err != nil {
		t.Fatal(err)
	}
	// As an admin does for a class's image: the data-plane admission
	// policy refuses the manager any image it does not list.
	if err := l.AllowDataPlaneImage(ctx, image); err != nil {
		t.Fatal(err)
	}
	oldPods := dataPlanePods(t, l, lb)
	if len(oldPods) != 3 {
		t.Fatalf("%d pods before the rollout", len(oldPods))
	}

	probe := l.NewClient(time.Second).StartProbe("http://"+addr+"/", 10*time.Millisecond, 5*time.Minute)
	watch := l.WatchHolders(addr, 5*time.Millisecond, 5*time.Minute)
	order := watchDeletions(l, lb, 5*time.Minute)
	start := time.Now()
	patch := client.MergeFrom(class.DeepCopy())
	class.Spec.DataPlane.Image = image
	if err := l.Client.Patch(ctx, class, patch); err != nil {
		probe.Stop()
		t.Fatal(err)
	}
	eventually(t, 4*time.Minute, "every pod running "+image+" and serving, Progressing false", func() error {
		pods := dataPlanePods(t, l, lb)
		if len(pods) != 3 {
			return fmt.Errorf("%d pods", len(pods))
		}
		for _, p := range pods {
			if p.DeletionTimestamp != nil || p.Spec.Containers[0].Image != image || !podIsReady(&p) {
				return fmt.Errorf("pod %s on %s: deleting %v, image %s, ready %v", p.Name, p.Spec.NodeName, p.DeletionTimestamp != nil, p.Spec.Containers[0].Image, podIsReady(&p))
			}
		}
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerProgressingCondition); c == nil || c.Status != metav1.ConditionFalse {
			return fmt.Errorf("progressing %+v", c)
		}
		return nil
	})
	rolled := time.Since(start)
	waitActive(t, l, lb, lab.NodeName(0), time.Minute)
	time.Sleep(time.Second)
	samples, err := watch.Stop()
	outage, ok, failed := probe.Stop()
	deletions := order()
	if err != nil {
		t.Fatal(err)
	}
	spans := between(samples, start, time.Now())
	t.Logf("holders: %s", describeHolders(spans, start))
	var outages []string
	for _, o := range probe.Outages() {
		outages = append(outages, fmt.Sprintf("+%v %.3fs", o.Start.Sub(start).Round(time.Millisecond), o.Duration.Seconds()))
	}
	var steps []string
	for _, d := range deletions {
		steps = append(steps, fmt.Sprintf("%s at +%v", d.node, d.at.Sub(start).Round(100*time.Millisecond)))
	}
	t.Logf("rolled to %s in %v; pods deleted: %s; client: %d answered, %d failed, longest gap %.3fs (every one: %v)",
		image, rolled.Round(100*time.Millisecond), strings.Join(steps, ", "), ok, failed, outage.Seconds(), outages)

	// Backups first, the master last, one each.
	var nodes []string
	for _, d := range deletions {
		nodes = append(nodes, d.node)
	}
	if !slices.Equal(nodes, []string{lab.NodeName(1), lab.NodeName(2), lab.NodeName(0)}) {
		t.Errorf("pods deleted on %v, want the backups by name, then the master", nodes)
	}
	// node-a handed the VIP over before its pod was deleted.
	if len(deletions) == 3 {
		at := deletions[2].at
		for _, s := range spans {
			if !s.at.After(at) && s.at.Add(s.d).After(at) && slices.Contains(s.holders, lab.NodeName(0)) {
				t.Errorf("node-a still held the VIP when its pod was deleted (holders %v)", s.holders)
			}
		}
	}
	for _, s := range spans {
		if len(s.holders) == 0 && s.d > 50*time.Millisecond {
			t.Errorf("no node held the VIP at +%v for %v", s.at.Sub(start).Round(time.Millisecond), s.d.Round(time.Millisecond))
		}
	}
	// node-a hands over, then takes the VIP back: two planned moves.
	lostOnlyInFlight(t, probe, failed, 2)
}

func dataPlanePods(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) []corev1.Pod {
	t.Helper()
	pods, err := listDataPlanePods(l, lb)
	if err != nil {
		t.Fatal(err)
	}
	return pods
}

func listDataPlanePods(l *lab.Lab, lb *v1alpha1.LoadBalancer) ([]corev1.Pod, error) {
	return l.Pods(ctx, lab.OperatorNamespace, desired.DataPlaneSelector(lb))
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

type deletion struct {
	node string
	at   time.Time
}

// watchDeletions looks at the data plane's pods every 50 ms, for at most
// limit, and returns a function that stops and gives, in order, when each
// pod was first seen being deleted.
func watchDeletions(l *lab.Lab, lb *v1alpha1.LoadBalancer, limit time.Duration) func() []deletion {
	stop, done := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var out []deletion
	seen := map[string]bool{}
	go func() {
		defer close(done)
		deadline := time.Now().Add(limit)
		for time.Now().Before(deadline) {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			pods, err := listDataPlanePods(l, lb)
			if err != nil {
				continue
			}
			mu.Lock()
			for _, p := range pods {
				if p.DeletionTimestamp != nil && !seen[p.Name] {
					seen[p.Name] = true
					out = append(out, deletion{node: p.Spec.NodeName, at: time.Now()})
				}
			}
			mu.Unlock()
		}
	}()
	return func() []deletion {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return out
	}
}
