package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestHelmLifecycle runs the chart's life on the lab (TestMain installed
// it with `helm install` from the built images) while a client probes the
// virtual IP every 10 ms: `helm upgrade` to new image tags rolls the
// manager and the data plane; `helm uninstall` leaves the CRDs, the
// LoadBalancers and their data planes serving; `helm install` again
// adopts them.
func TestHelmLifecycle(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	images := l.Images()
	t.Cleanup(func() {
		// Whatever failed, later tests need the operator installed.
		if _, err := l.Helm(ctx, "status", lab.HelmRelease); err != nil {
			if out, err := l.HelmInstall(ctx, false, images.Manager, images.DataPlane); err != nil {
				t.Errorf("reinstalling for the next tests: %v\n%s", err, out)
			}
		}
	})
	if out, err := l.Helm(ctx, "status", lab.HelmRelease); err != nil || !strings.Contains(string(out), "STATUS: deployed") {
		t.Fatalf("the lab's release: %v\n%s", err, out)
	}
	c := l.NewClient(200 * time.Millisecond)

	// Upgrade to new tags of the same images, as a registry would serve a
	// new release.
	manager, dataPlane, err := l.TagImages(ctx, "upgrade")
	if err != nil {
		t.Fatal(err)
	}
	// A 2 s timeout: the rollouts count lost requests (refused, reset,
	// stalled), not ones the busy machine answers in more than 200 ms
	// while it restarts the manager and every data-plane pod.
	lossProbe := l.NewClient(2 * time.Second)
	probe := lossProbe.StartProbe("http://"+vip+"/", 10*time.Millisecond, 5*time.Minute)
	start := time.Now()
	if out, err := l.HelmInstall(ctx, true, manager, dataPlane); err != nil {
		probe.Stop()
		t.Fatalf("%v\n%s", err, out)
	}
	waitDataPlaneImage(t, l, lb, dataPlane, 4*time.Minute)
	waitActive(t, l, lb, lab.NodeName(0), 2*time.Minute)
	outage, ok, failed := probe.Stop()
	var outages []string
	for _, o := range probe.Outages() {
		outages = append(outages, fmt.Sprintf("%.3fs", o.Duration.Seconds()))
	}
	t.Logf("helm upgrade to new images: rolled in %.1fs; longest outage %.3fs (%d requests answered, %d failed; every outage: %v)",
		time.Since(start).Seconds(), outage.Seconds(), ok, failed, outages)
	// The operator rolls the data plane (TestRolloutHandsOverLast):
	// node-a hands the VIP over before its pod goes and takes it back
	// after, two planned moves.
	lostOnlyInFlight(t, probe, failed, 2)

	// Uninstall: the manager goes; the CRDs (helm.sh/resource-policy:
	// keep), the LoadBalancer and its data plane stay and keep serving.
	if out, err := l.Helm(ctx, "uninstall", lab.HelmRelease, "--wait", "--timeout=2m"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	eventually(t, 2*time.Minute, "the manager's Deployment gone", func() error {
		err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: lab.ManagerDeployment}, &appsv1.Deployment{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there (%v)", err)
	})
	for _, crd := range []string{"loadbalancers.hakeeper.io", "loadbalancerclasses.hakeeper.io"} {
		if out, err := l.Kubectl(ctx, "get", "crd", crd); err != nil {
			t.Errorf("CRD %s after helm uninstall: %v\n%s", crd, err, out)
		}
	}
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), &v1alpha1.LoadBalancer{}); err != nil {
		t.Errorf("LoadBalancer after helm uninstall: %v", err)
	}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: lab.ClassName}, &v1alpha1.LoadBalancerClass{}); err != nil {
		t.Errorf("LoadBalancerClass after helm uninstall: %v", err)
	}
	probe = c.StartProbe("http://"+vip+"/", 10*time.Millisecond, time.Minute)
	time.Sleep(2 * time.Second)
	outage, ok, failed = probe.Stop()
	if failed > 0 || ok == 0 {
		t.Errorf("without the operator the VIP must keep serving: %d answered, %d failed (outage %v)", ok, failed, outage)
	}

	// Install again, with the first images: the kept CRDs are adopted
	// (their Helm ownership names this release) and the LoadBalancer is
	// reconciled again, its data plane rolled back to those images.
	probe = lossProbe.StartProbe("http://"+vip+"/", 10*time.Millisecond, 5*time.Minute)
	reinstalled := time.Now()
	if out, err := l.HelmInstall(ctx, false, images.Manager, images.DataPlane); err != nil {
		probe.Stop()
		t.Fatalf("helm install over the kept CRDs: %v\n%s", err, out)
	}
	waitDataPlaneImage(t, l, lb, images.DataPlane, 4*time.Minute)
	waitActive(t, l, lb, lab.NodeName(0), 2*time.Minute)
	outage, ok, failed = probe.Stop()
	t.Logf("helm install again (images back): longest outage %.3fs (%d answered, %d failed)", outage.Seconds(), ok, failed)
	lostOnlyInFlight(t, probe, failed, 2)
	if t.Failed() {
		// When the requests were lost, against what the nodes logged:
		// which move (handover, take-back, a pod replaced without one)
		// stalled them. (A stall of the client's full timeout was seen in
		// 2 of the 5 full runs of 2026-12-06/07, one beside a compile, and in
		// none of 3 runs of this test alone.)
		explainLoss(t, l, lb, probe, reinstalled)
	}
}

// waitDataPlaneImage waits until the LoadBalancer's DaemonSet runs image
// on every node, each pod updated and available.
func waitDataPlaneImage(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, image string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, "the data plane rolled to "+image, func() error {
		ds := &appsv1.DaemonSet{}
		if err := l.Client.Get(ctx, client.ObjectKey{Namespace: lab.OperatorNamespace, Name: desired.NamesFor(lb).DaemonSet}, ds); err != nil {
			return err
		}
		if got := ds.Spec.Template.Spec.InitContainers[0].Image; got != image {
			return fmt.Errorf("the DaemonSet's agent image is %s", got)
		}
		s := ds.Status
		if s.ObservedGeneration < ds.Generation || s.UpdatedNumberScheduled != s.DesiredNumberScheduled ||
			s.NumberAvailable != s.DesiredNumberScheduled || s.DesiredNumberScheduled == 0 {
			return fmt.Errorf("rollout: %d/%d updated, %d available", s.UpdatedNumberScheduled, s.DesiredNumberScheduled, s.NumberAvailable)
		}
		return nil
	})
}
