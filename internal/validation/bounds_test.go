package validation

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// fullSpec sets every object and list the CRD's integer fields live in, so
// each bound can be tried on it.
const fullSpec = `{
  "virtualIPs": ["198.18.0.100"],
  "vrrp": {"virtualRouterID": 7, "version": 3, "advertIntervalMilliseconds": 100, "preemptDelaySeconds": 1,
           "priorities": [{"node": "a", "priority": 100}]},
  "listeners": [{"name": "http", "port": 80, "protocol": "HTTP", "defaultBackend": "web",
                 "bind": {"maxConnections": 100}}],
  "backends": [{"name": "web",
    "healthCheck": {"type": "HTTP", "expectStatus": 200, "port": 8080, "intervalMilliseconds": 60000,
                    "timeoutMilliseconds": 10, "rise": 2, "fall": 2},
    "servers": [{"name": "a", "address": "198.18.0.21", "port": 8080, "weight": 100}],
    "serviceRef": {"name": "web", "port": 80, "weight": 100, "serverSlots": 4}}],
  "haproxy": {"maxConnections": 100, "threads": 2,
    "timeouts": {"connectMilliseconds": 100, "clientSeconds": 10, "serverSeconds": 10, "httpRequestSeconds": 10,
                 "tunnelSeconds": 10, "hardStopAfterSeconds": 10}}
}`

// bound is one integer field's range in the CRD, at a JSON path under
// spec where list items are "[]".
type bound struct {
	path     []string
	min, max *float64
}

func collectBounds(schema map[string]any, path []string, out *[]bound) {
	if t, _ := schema["type"].(string); t == "integer" {
		b := bound{path: path}
		if v, ok := schema["minimum"].(float64); ok {
			b.min = &v
		}
		if v, ok := schema["maximum"].(float64); ok {
			b.max = &v
		}
		if b.min != nil || b.max != nil {
			*out = append(*out, b)
		}
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		for name, child := range props {
			if foreignTypes[name] {
				continue
			}
			collectBounds(child.(map[string]any), append(append([]string{}, path...), name), out)
		}
	}
	if items, ok := schema["items"].(map[string]any); ok {
		collectBounds(items, append(append([]string{}, path...), "[]"), out)
	}
}

// set writes v at path into doc, descending into the first item of lists.
func set(doc any, path []string, v float64) error {
	for i, key := range path {
		last := i == len(path)-1
		switch node := doc.(type) {
		case map[string]any:
			if last {
				node[key] = v
				return nil
			}
			next, ok := node[key]
			if !ok {
				return fmt.Errorf("fullSpec has no %s", strings.Join(path[:i+1], "."))
			}
			doc = next
		case []any:
			if key != "[]" || len(node) == 0 {
				return fmt.Errorf("fullSpec has no item at %s", strings.Join(path[:i+1], "."))
			}
			doc = node[0]
		}
	}
	return nil
}

func fieldPath(path []string) string {
	return "spec." + strings.ReplaceAll(strings.Join(path, "."), ".[]", "[0]")
}

// TestNumericBoundsMatchCRD: for every integer field with a minimum or
// maximum in the generated CRD, internal/validation accepts the bound and
// refuses one past it, naming the field, as the API server does.
func TestNumericBoundsMatchCRD(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "hakeeper.io_loadbalancers.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd struct {
		Spec struct {
			Versions []struct {
				Schema struct {
					OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
				} `json:"schema"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &crd); err != nil {
		t.Fatal(err)
	}
	root := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
	spec := root["properties"].(map[string]any)["spec"].(map[string]any)
	var bounds []bound
	collectBounds(spec, nil, &bounds)
	if len(bounds) < 24 {
		t.Fatalf("found only %d bounded integer fields in the CRD", len(bounds))
	}
	try := func(b bound, v float64) (refused bool, message string) {
		t.Helper()
		var doc any
		if err := json.Unmarshal([]byte(fullSpec), &doc); err != nil {
			t.Fatal(err)
		}
		if err := set(doc, b.path, v); err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(doc)
		var s v1alpha1.LoadBalancerSpec
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatal(err)
		}
		agg := Spec(&s).ToAggregate()
		if agg == nil {
			return false, "no error"
		}
		return strings.Contains(agg.Error(), fieldPath(b.path)), agg.Error()
	}
	for _, b := range bounds {
		name := fieldPath(b.path)
		// Values that other rules refuse at the bound itself (a VRRPv3
		// advert must be a multiple of 10; a check timeout not above its
		// interval) are tried at the nearest value those rules accept.
		for _, edge := range []struct {
			limit *float64
			step  float64
		}{{b.min, -1}, {b.max, +1}} {
			if edge.limit == nil {
				continue
			}
			inside := *edge.limit
			if strings.HasSuffix(name, "advertIntervalMilliseconds") && edge.step > 0 {
				inside -= float64(int(inside) % 10)
			}
			if strings.HasSuffix(name, "healthCheck.timeoutMilliseconds") && edge.step > 0 {
				continue // bounded by the interval first; the CEL test covers it
			}
			if refused, msg := try(b, inside); refused {
				t.Errorf("%s = %v is within the CRD's bounds, but internal/validation refuses it: %s", name, inside, msg)
			}
			if refused, msg := try(b, *edge.limit+edge.step); !refused {
				t.Errorf("%s = %v is outside the CRD's bounds, but internal/validation accepts it: %s", name, *edge.limit+edge.step, msg)
			}
		}
	}
}
