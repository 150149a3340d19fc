package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestHelmLifecycle runs the chart's life on the lab (TestMain installed
// it with `helm install` from the built images) while a client probes the
// virtual IP every 10 ms: `helm upgrade` to new image tags rolls the
// manager and the data plane; `helm uninstall` leaves the CRDs, the
// LoadBalancers and their data planes serving; `make deploy`'s
// dist/install.yaml takes them over and is removed again; `helm install`
// again adopts them, and `helm test` passes.
func TestHelmLifecycle(t *testing.T) {
	l := requireLab(t)
	lb := applyWebsite(t, l)
	images := l.Images()
	t.Cleanup(func() {
		// Whatever failed, later tests need the operator installed.
		removeInstalled(t, l)
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

	// Between the two releases, hakeeper as `make deploy` installs it: the
	// one manifest `make build-installer` writes, for a third set of tags.
	// Its manager takes the LoadBalancer over (its data plane rolls to
	// those tags) and it is Ready; then the installer's objects go but for
	// the CRDs and the namespace, as Helm takes over again below.
	installer(t, l, lb)

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

	// `helm test`: the chart's hook Pod, on the lab's nodes, finds the
	// manager ready (its caches of the CRDs' objects synced).
	if out, err := l.Helm(ctx, "test", lab.HelmRelease, "--timeout=3m", "--logs"); err != nil || !strings.Contains(string(out), "the manager is ready") ||
		!regexp.MustCompile(`Phase:\s+Succeeded`).Match(out) {
		t.Errorf("helm test: %v\n%s", err, out)
	} else {
		t.Logf("helm test passed")
	}
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

// installed is the manifest installer applied, until removeInstalled
// removes it again (also from TestHelmLifecycle's cleanup, after a
// failure: kept in memory, as the test's temporary folders are gone by
// then).
var installed []byte

// installer applies what `make build-installer` writes (hack/installer.sh)
// for new tags of the built images, with the operator uninstalled, and
// waits for the LoadBalancer to be served by its data plane on those
// images; then removes it again (removeInstalled).
func installer(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer) {
	t.Helper()
	manager, dataPlane, err := l.TagImages(ctx, "installer")
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := l.Installer(ctx, manager, dataPlane)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "install.yaml")
	if err := os.WriteFile(file, manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	installed = manifest
	start := time.Now()
	if out, err := l.Kubectl(ctx, "apply", "--server-side", "-f", file); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := l.WaitDeployment(ctx, lab.OperatorNamespace, lab.ManagerDeployment, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	waitDataPlaneImage(t, l, lb, dataPlane, 4*time.Minute)
	waitActive(t, l, lb, lab.NodeName(0), 2*time.Minute)
	eventually(t, time.Minute, "Ready under the installer's manager", func() error {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		if c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerReadyCondition); c == nil || c.Status != metav1.ConditionTrue {
			return fmt.Errorf("Ready %+v", c)
		}
		return nil
	})
	t.Logf("dist/install.yaml (%d KiB) applied: manager available, the data plane rolled to %s and Ready in %.1fs",
		len(manifest)/1024, dataPlane, time.Since(start).Seconds())
	removeInstalled(t, l)
}

// removeInstalled deletes what installer applied but for the CRDs and the
// namespace (the LoadBalancers and their data planes stay), if it did.
func removeInstalled(t *testing.T, l *lab.Lab) {
	t.Helper()
	if installed == nil {
		return
	}
	var doomed []string
	for _, doc := range strings.Split(string(installed), "\n---\n") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Error(err)
			return
		}
		if head.Kind != "CustomResourceDefinition" && head.Kind != "Namespace" && head.Kind != "" {
			doomed = append(doomed, doc)
		}
	}
	f, err := os.CreateTemp("", "hakeeper-installer-*.yaml")
	if err != nil {
		t.Error(err)
		return
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(strings.Join(doomed, "\n---\n")); err != nil {
		t.Error(err)
	}
	f.Close()
	if out, err := l.Kubectl(ctx, "delete", "--ignore-not-found", "--wait", "-f", f.Name()); err != nil {
		t.Errorf("removing the installer's objects: %v\n%s", err, out)
	}
	installed = nil
}
