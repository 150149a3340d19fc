package chart

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// The Argo CD health check the chart ships (hack/chart-sync.sh copies it;
// test/argocd tests the source).
var (
	healthSource = filepath.Join(testenv.RepoRoot(), "hack", "argocd", "hakeeper.io", "LoadBalancer", "health.lua")
	healthCopy   = filepath.Join(chartDir(), "files", "argocd-health.lua")
)

// TestArgoCDHealthShipped: the chart's copy of the health check is the
// tested source, byte for byte, and the packaged chart holds it.
func TestArgoCDHealthShipped(t *testing.T) {
	want, err := os.ReadFile(healthSource)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(healthCopy)
	if err != nil {
		t.Fatalf("%v (run hack/chart-sync.sh)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from %s: run hack/chart-sync.sh (make manifests)", healthCopy, healthSource)
	}
	eachHelm(t, func(t *testing.T, h helmCLI) {
		if got := packaged(t, h)["hakeeper/files/argocd-health.lua"]; !bytes.Equal(got, want) {
			t.Errorf("the packaged chart's files/argocd-health.lua is not health.lua (%d bytes)", len(got))
		}
	})
}
