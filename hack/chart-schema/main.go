// Command chart-schema writes charts/hakeeper/values.schema.json: the
// hand-written schema in values.schema.in.json (this folder), with the
// Kubernetes types the chart passes through (affinity, tolerations,
// topology spread constraints, resources) filled in from k8s.io/api's Go
// types, as controller-gen would put them in a CRD, and every object
// closed (additionalProperties: false), so a misspelt field is refused at
// install instead of dropped by the API server. hack/chart-sync.sh runs it
// (make manifests); hack/verify-generated.sh fails on drift.
//
// In values.schema.in.json, {"$ref": "#/definitions/<Type>"} names a type
// of k8s.io/api/core/v1 (Affinity, Toleration, ...); this fills in
// "definitions" with each named type.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	// The version of the types: go.mod pins it to hakeeper's.
	_ "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-tools/pkg/crd"
	crdmarkers "sigs.k8s.io/controller-tools/pkg/crd/markers"
	"sigs.k8s.io/controller-tools/pkg/loader"
	"sigs.k8s.io/controller-tools/pkg/markers"
)

const corev1 = "k8s.io/api/core/v1"

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: chart-schema values.schema.in.json values.schema.json")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "chart-schema:", err)
		os.Exit(1)
	}
}

var refRe = regexp.MustCompile(`"#/definitions/([A-Za-z]+)"`)

func run(in, out string) error {
	src, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var schema map[string]any
	if err := json.Unmarshal(src, &schema); err != nil {
		return fmt.Errorf("failed to parse %s: %w", in, err)
	}
	var types []string
	for _, m := range refRe.FindAllSubmatch(src, -1) {
		if !slices.Contains(types, string(m[1])) {
			types = append(types, string(m[1]))
		}
	}
	defs, err := kubernetesSchemas(types)
	if err != nil {
		return err
	}
	schema["definitions"] = defs
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(schema); err != nil {
		return err
	}
	return os.WriteFile(out, b.Bytes(), 0o644)
}

// kubernetesSchemas are the flattened OpenAPI schemas of the named types
// of k8s.io/api/core/v1, as JSON Schema values.
func kubernetesSchemas(names []string) (map[string]any, error) {
	pkgs, err := loader.LoadRoots(corev1)
	if err != nil {
		return nil, fmt.Errorf("failed to load %s: %w", corev1, err)
	}
	reg := &markers.Registry{}
	if err := crdmarkers.Register(reg); err != nil {
		return nil, err
	}
	p := &crd.Parser{Collector: &markers.Collector{Registry: reg}, Checker: &loader.TypeChecker{}, AllowDangerousTypes: true}
	crd.AddKnownTypes(p)
	p.NeedPackage(pkgs[0])
	defs := map[string]any{}
	for _, name := range names {
		id := crd.TypeIdent{Package: pkgs[0], Name: name}
		if p.LookupType(pkgs[0], name) == nil {
			return nil, fmt.Errorf("%s has no type %s", corev1, name)
		}
		p.NeedFlattenedSchemaFor(id)
		props := p.FlattenedSchemata[id]
		b, err := json.Marshal(props)
		if err != nil {
			return nil, err
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, err
		}
		defs[name] = closeObjects(v)
	}
	for _, pkg := range pkgs {
		for _, e := range pkg.Errors {
			return nil, fmt.Errorf("loading %s: %v", corev1, e)
		}
	}
	return defs, nil
}

// closeObjects sets additionalProperties: false on every object schema
// with properties (the API server would silently prune unknown fields;
// Helm's schema check should name them), drops the descriptions (the
// chart's README links the Kubernetes reference) and the x-kubernetes-* extensions JSON
// Schema does not know.
func closeObjects(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			if strings.HasPrefix(k, "x-kubernetes-") || k == "description" {
				delete(v, k)
				continue
			}
			v[k] = closeObjects(sub)
		}
		if _, ok := v["properties"]; ok {
			if _, set := v["additionalProperties"]; !set {
				v["additionalProperties"] = false
			}
		}
		return v
	case []any:
		for i := range v {
			v[i] = closeObjects(v[i])
		}
		return v
	}
	return v
}
