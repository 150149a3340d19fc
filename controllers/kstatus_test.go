package controllers_test

import (
	"fmt"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// waitKstatus waits until kstatus (what Flux and `kubectl wait` use) reads
// the LoadBalancer as want, and returns its message.
func waitKstatus(t *testing.T, lb *v1alpha1.LoadBalancer, want kstatus.Status) string {
	t.Helper()
	var message string
	eventually(t, fmt.Sprintf("%s %s", lb.Name, want), func() error {
		obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(getLB(t, lb))
		if err != nil {
			return err
		}
		res, err := kstatus.Compute(&unstructured.Unstructured{Object: obj})
		if err != nil {
			return err
		}
		if res.Status != want {
			return fmt.Errorf("kstatus %s: %s", res.Status, res.Message)
		}
		message = res.Message
		return nil
	})
	return message
}

// TestKstatus: a LoadBalancer the operator refuses is Failed at once (a
// Flux health check fails fast instead of timing out); one rolling out is
// InProgress; one Ready for its generation is Current, and InProgress
// again while a change rolls out.
func TestKstatus(t *testing.T) {
	ns := namespace(t, "kstatus")
	node(t, "ks-1", "198.18.25.1", map[string]string{"pool": "kstatus"})
	service(t, ns, "web", "http", 80, 8080, "198.18.15.11")
	createClass(t, testClass("kstatus", "198.18.25.96/27"))

	refused := smallLB(ns, "kstatus", "198.18.99.1", "kstatus")
	refused.Name = "refused"
	createLB(t, refused)
	t.Logf("refused: %s", waitKstatus(t, refused, kstatus.FailedStatus))

	lb := smallLB(ns, "kstatus", "", "kstatus")
	createLB(t, lb)
	t.Logf("no report yet: %s", waitKstatus(t, lb, kstatus.InProgressStatus))
	names := desired.NamesFor(lb)
	report := func() {
		t.Helper()
		var h string
		eventually(t, "keepalived.conf of ks-1", func() error {
			k := configMap(t, dataPlaneNamespace, names.KeepalivedConfigMap).Data["ks-1.conf"]
			if k == "" {
				return fmt.Errorf("none yet")
			}
			h = contract.NodeConfigHash([]byte(configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig]), []byte(k))
			return nil
		})
		reportNode(t, lb, "ks-1", contract.NodeReport{Interface: "eth0", Role: v1alpha1.VRRPRoleMaster, ConfigHash: h, Healthy: true,
			Backends: map[string]contract.BackendCount{"web": {Up: 2, Total: 2}}})
	}
	report()
	t.Logf("ready: %s", waitKstatus(t, lb, kstatus.CurrentStatus))

	current := getLB(t, lb)
	current.Spec.HAProxy.MaxConnections = ptrTo(int32(3000))
	if err := k8s.Update(ctx, current); err != nil {
		t.Fatal(err)
	}
	t.Logf("a change rolling out: %s", waitKstatus(t, lb, kstatus.InProgressStatus))
	eventually(t, "the change rendered", func() error {
		if !strings.Contains(configMap(t, dataPlaneNamespace, names.HAProxyConfigMap).Data[contract.KeyHAProxyConfig], "maxconn 3000") {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	report()
	waitKstatus(t, lb, kstatus.CurrentStatus)
}

func ptrTo[T any](v T) *T { return &v }
