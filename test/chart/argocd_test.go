package chart

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
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
		dir := t.TempDir()
		if _, err := h.run("package", chartDir(), "--destination", dir); err != nil {
			t.Fatal(err)
		}
		packaged, err := filepath.Glob(filepath.Join(dir, "hakeeper-*.tgz"))
		if err != nil || len(packaged) != 1 {
			t.Fatalf("packaged: %v %v", packaged, err)
		}
		if got := fileInTarball(t, packaged[0], "hakeeper/files/argocd-health.lua"); !bytes.Equal(got, want) {
			t.Errorf("the packaged chart's files/argocd-health.lua is not health.lua (%d bytes)", len(got))
		}
	})
}

func fileInTarball(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	r := tar.NewReader(gz)
	for {
		hdr, err := r.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name == name {
			b, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}
