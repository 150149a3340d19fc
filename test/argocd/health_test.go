// Package argocd evaluates hack/argocd's health.lua the way Argo CD
// evaluates its built-in health checks (internal/argohealth: gopher-lua,
// the object as the global obj), on the testdata captured from the lab,
// comparing status and message whole with health_test.yaml; and reads the
// same objects with kstatus, as Flux and `kubectl wait` do.
package argocd

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kstatus "sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/internal/testing/argohealth"
)

// kstatusOf is what kstatus must say of each captured object: Current only
// when Ready for its generation, Failed when the operator refuses the spec
// or a node rejects its config, InProgress otherwise.
var kstatusOf = map[string]kstatus.Status{
	// kstatus reads an object without any status as Current: nothing says
	// otherwise until the operator's first write, milliseconds after the
	// create (docs/operations.md says so for Flux users).
	"testdata/new.yaml":              kstatus.CurrentStatus,
	"testdata/rolling-out.yaml":      kstatus.InProgressStatus,
	"testdata/ready.yaml":            kstatus.CurrentStatus,
	"testdata/config-rejected.yaml":  kstatus.FailedStatus,
	"testdata/no-holder.yaml":        kstatus.InProgressStatus,
	"testdata/split-brain.yaml":      kstatus.CurrentStatus,
	"testdata/not-allowed.yaml":      kstatus.FailedStatus,
	"testdata/stale-generation.yaml": kstatus.InProgressStatus,
	"testdata/reconcile-error.yaml":  kstatus.InProgressStatus,
}

var update = flag.Bool("update", false, "rewrite health_test.yaml with what health.lua returns (review the diff)")

func TestHealth(t *testing.T) {
	script, err := argohealth.Script()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(argohealth.Dir(), "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Tests []struct {
			HealthStatus argohealth.Health `json:"healthStatus"`
			InputPath    string            `json:"inputPath"`
		} `json:"tests"`
	}
	if err := yaml.UnmarshalStrict(data, &cases); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, tc := range cases.Tests {
		t.Run(tc.InputPath, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(argohealth.Dir(), tc.InputPath))
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			if err := yaml.Unmarshal(raw, &obj); err != nil {
				t.Fatal(err)
			}
			got, err := argohealth.Evaluate(script, obj)
			if err != nil {
				t.Fatal(err)
			}
			if *update {
				cases.Tests[i].HealthStatus = got
			} else if got != tc.HealthStatus {
				t.Errorf("got %+v\nwant %+v", got, tc.HealthStatus)
			}
			want, ok := kstatusOf[tc.InputPath]
			if !ok {
				t.Fatalf("no kstatus expectation for %s", tc.InputPath)
			}
			// kstatus wants integers as int64, as the API machinery decodes them.
			jsonData, err := yaml.YAMLToJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := u.UnmarshalJSON(jsonData); err != nil {
				t.Fatal(err)
			}
			res, err := kstatus.Compute(u)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != want {
				t.Errorf("kstatus %s (%s), want %s", res.Status, res.Message, want)
			}
		})
		seen[tc.HealthStatus.Status] = true
	}
	if *update {
		out, err := yaml.Marshal(cases)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(argohealth.Dir(), "health_test.yaml"), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"Healthy", "Progressing", "Degraded"} {
		if !seen[want] {
			t.Errorf("no case ends %s", want)
		}
	}
}
