// Package e2e runs lab scenarios on a real cluster (internal/testing/lab): kubelets
// and containerd in network namespaces, hakeeper installed from its images
// with kustomize, real haproxy, keepalived and agents in the DaemonSet's
// pods, a client probing the virtual IP.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

var (
	theLab   *lab.Lab
	labError error
	ctx      = context.Background()
)

const vip = lab.WebsiteVIP

func TestMain(m *testing.M) {
	lab.MaybeRunBackend()
	os.Exit(run(m))
}
func run(m *testing.M) int {
	if os.Geteuid() != 0 {
		labError = fmt.Errorf("the lab needs root: it runs a cluster of network namespaces")
		return m.Run()
	}
	ctrl.SetLogger(logr.Discard())
	// HAKEEPER_LAB_DIR keeps the lab's logs (manager, each container) for
	// a look after a failure.
	dir := os.Getenv("HAKEEPER_LAB_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "hakeeper-lab"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	theLab, labError = lab.Start(ctx, lab.Config{
		Nodes: 3, Backends: 3, Dir: dir,
		NodeLabels: map[string]string{"hakeeper.io/edge": "true"},
		// Installed as most users will, with the chart; make demo installs
		// with kustomize, and test/chart checks both give the same objects.
		Helm: true,
	})
	if labError == nil {
		defer theLab.Close()
	}
	return m.Run()
}
func requireLab(t *testing.T) *lab.Lab {
	t.Helper()
	if labError != nil {
		if os.Getenv("HAKEEPER_REQUIRE_REAL_TOOLS") == "1" {
			t.Fatal(labError)
		}
		t.Skip(labError)
	}
	return theLab
}
