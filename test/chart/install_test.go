package chart

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

var crdNames = []string{"loadbalancers.hakeeper.io", "loadbalancerclasses.hakeeper.io"}

func crd(name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apiextensions.k8s.io/v1")
	u.SetKind("CustomResourceDefinition")
	u.SetName(name)
	return u
}

// TestInstall installs, upgrades and uninstalls the chart on a real API
// server with both Helms, one after the other and across versions (a
// release Helm 3 installed, upgraded by Helm 4, and back): what a user
// moving to Helm 4 does. The CRDs stay after every uninstall and the next
// install takes them over. How each Helm wrote the Deployment is logged
// (-v), not checked, as it is Helm's business: Helm 3 patches client-side
// (managedFields operation Update); Helm 4 installs server-side (Apply,
// field manager helm) but keeps upgrading a Helm 3 release client-side;
// Helm 3 upgrading a Helm 4 release patches beside Helm 4's Apply entry.
// While a release is installed, a second one, in another namespace or under
// another name, is refused by either Helm with a message naming the first.
func TestInstall(t *testing.T) {
	h3 := findHelm(t, "v3", "HELM")
	h4 := findHelm(t, "v4", "HELM4")
	ctrllog.SetLogger(logr.Discard())
	env, err := testenv.Start()
	if err != nil {
		if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	// testenv installs the CRDs from config/; the chart installs its own.
	for _, name := range crdNames {
		if err := env.Client.Delete(ctx, crd(name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		for _, name := range crdNames {
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, crd(name)); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		t.Fatalf("CRDs not deleted: %v", err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}

	helmOn := func(h helmCLI, args ...string) {
		t.Helper()
		t.Logf("%s %s", h.version, strings.Join(args[:2], " "))
		if out, err := h.run(append(args, "--kubeconfig", kubeconfig, "--namespace", releaseNamespace)...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	replicas := func(want int32) {
		t.Helper()
		var d appsv1.Deployment
		if err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "hakeeper-controller-manager"}, &d); err != nil {
			t.Fatal(err)
		}
		var writes []string
		for _, f := range d.ManagedFields {
			writes = append(writes, f.Manager+"/"+string(f.Operation))
		}
		t.Logf("Deployment written by %v", writes)
		if d.Spec.Replicas == nil || *d.Spec.Replicas != want {
			t.Errorf("replicas %v, want %d", d.Spec.Replicas, want)
		}
	}
	uninstalled := func(h helmCLI) {
		t.Helper()
		helmOn(h, "uninstall", "hakeeper")
		err := env.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: "hakeeper-controller-manager"}, &appsv1.Deployment{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s uninstall: Deployment still there (%v)", h.version, err)
		}
		for _, name := range crdNames {
			if err := env.Client.Get(ctx, client.ObjectKey{Name: name}, crd(name)); err != nil {
				t.Errorf("%s uninstall: CRD %s gone (%v): every LoadBalancer with it", h.version, name, err)
			}
		}
	}

	helmOn(h3, "install", "hakeeper", chartDir(), "--create-namespace")
	replicas(2)
	secondRefused := func() {
		t.Helper()
		// One hakeeper per cluster: a second release, in another namespace
		// or under another name, is refused, naming the first.
		for _, h := range []helmCLI{h3, h4} {
			for _, second := range [][2]string{{"hakeeper", "team-b"}, {"hakeeper-b", releaseNamespace}} {
				out, err := h.run("install", second[0], chartDir(), "--kubeconfig", kubeconfig, "--namespace", second[1], "--create-namespace")
				if err == nil || !strings.Contains(err.Error(), "one hakeeper per cluster") ||
					!strings.Contains(err.Error(), `release "hakeeper" in namespace "`+releaseNamespace+`"`) {
					t.Errorf("%s: a second release %s in %s: got %v\n%s, want it refused naming release hakeeper in %s", h.version, second[0], second[1], err, out, releaseNamespace)
				}
			}
		}
	}
	secondRefused()
	helmOn(h3, "upgrade", "hakeeper", chartDir(), "--set", "manager.replicas=3")
	replicas(3)
	helmOn(h4, "upgrade", "hakeeper", chartDir(), "--set", "manager.replicas=1")
	replicas(1)
	uninstalled(h4)

	helmOn(h4, "install", "hakeeper", chartDir())
	replicas(2)
	secondRefused()
	helmOn(h3, "upgrade", "hakeeper", chartDir(), "--set", "manager.replicas=3")
	replicas(3)
	uninstalled(h3)
}
