package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestShippedBinariesLinkNoTestPackage: what only tests, the lab, the
// benches and the demo use lives under internal/testing, and neither
// binary the images carry links any of it.
func TestShippedBinariesLinkNoTestPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "./cmd/hakeeper-supervise").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list printed %d packages: %s", len(deps), out)
	}
	for _, dep := range deps {
		if strings.Contains(dep, "/hakeeper/internal/testing/") {
			t.Errorf("a shipped binary links %s", dep)
		}
	}
}
