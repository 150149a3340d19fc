package validation

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestPatternsMatchCRD keeps the Go patterns and the API's Pattern markers
// in step: every pattern in the generated CRD must be one of ours, and each
// of ours must be used by the CRD.
func TestPatternsMatchCRD(t *testing.T) {
	var inCRD []string
	for _, file := range []string{"hakeeper.io_loadbalancers.yaml", "hakeeper.io_loadbalancerclasses.yaml"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", file))
		if err != nil {
			t.Fatal(err)
		}
		var crd map[string]any
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatal(err)
		}
		collectPatterns(crd, &inCRD)
	}
	ours := []string{NamePattern, SubdomainPattern, ServiceNamePattern, InterfacePattern, HostPattern,
		PathPrefixPattern, CheckPathPattern, HeaderPattern, CookiePattern}
	for _, p := range inCRD {
		if !slices.Contains(ours, p) {
			t.Errorf("the CRD has pattern %q that internal/validation does not know", p)
		}
	}
	for _, p := range ours {
		if !slices.Contains(inCRD, p) {
			t.Errorf("pattern %q is not in the CRD", p)
		}
	}
}

// foreignTypes are fields whose types, and patterns, come from Kubernetes
// (Toleration, ResourceRequirements, Condition) and never reach a config.
var foreignTypes = map[string]bool{"tolerations": true, "resources": true, "haproxyResources": true, "keepalivedResources": true,
	"status": true, "namespaceSelector": true}

func collectPatterns(v any, out *[]string) {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			if foreignTypes[k] {
				continue
			}
			if s, ok := child.(string); ok && k == "pattern" {
				*out = append(*out, s)
				continue
			}
			collectPatterns(child, out)
		}
	case []any:
		for _, child := range v {
			collectPatterns(child, out)
		}
	}
}
