package docs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// schema is the part of a CRD's OpenAPI v3 schema the reference states.
type schema struct {
	Type                 string             `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	Properties           map[string]*schema `json:"properties,omitempty"`
	Items                *schema            `json:"items,omitempty"`
	AdditionalProperties *schemaOrBool      `json:"additionalProperties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	MinItems             *int64             `json:"minItems,omitempty"`
	MaxItems             *int64             `json:"maxItems,omitempty"`
	MinLength            *int64             `json:"minLength,omitempty"`
	MaxLength            *int64             `json:"maxLength,omitempty"`
	MinProperties        *int64             `json:"minProperties,omitempty"`
	MaxProperties        *int64             `json:"maxProperties,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Maximum              *float64           `json:"maximum,omitempty"`
	MultipleOf           *float64           `json:"multipleOf,omitempty"`
	ListType             string             `json:"x-kubernetes-list-type,omitempty"`
	ListMapKeys          []string           `json:"x-kubernetes-list-map-keys,omitempty"`
	IntOrString          bool               `json:"x-kubernetes-int-or-string,omitempty"`
}

// schemaOrBool is additionalProperties: a schema, or true.
type schemaOrBool struct {
	Schema *schema
	Allows bool
}

func (s *schemaOrBool) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &s.Allows); err == nil {
		return nil
	}
	s.Allows = true
	return json.Unmarshal(b, &s.Schema)
}

func (s *schemaOrBool) MarshalJSON() ([]byte, error) {
	if s.Schema != nil {
		return json.Marshal(s.Schema)
	}
	return json.Marshal(s.Allows)
}

// elem is what a field holds: a list's items, else the field itself.
func elem(s *schema) *schema {
	if s.Type == "array" && s.Items != nil {
		return s.Items
	}
	return s
}

// field is one property of a kind, named by the path `kubectl explain`
// takes (list items are transparent: spec.listeners.port).
type field struct {
	path    string // spec.listeners.port
	display string // spec.listeners[].port
	name    string
	s       *schema
	parent  *field
}

func (f *field) isList() bool { return f.s.Type == "array" }

// child is the field's property name (of its items, for a list), or nil.
func (f *field) child(kind *kindSchema, name string) *field {
	return kind.fields[f.path+"."+name]
}

// kindSchema is one CRD kind's spec and status, flattened.
type kindSchema struct {
	kind   string
	root   *schema
	fields map[string]*field // by path; "spec" and "status" included
}

func newKindSchema(kind string, root *schema) *kindSchema {
	k := &kindSchema{kind: kind, root: root, fields: map[string]*field{}}
	for _, top := range []string{"spec", "status"} {
		if s, ok := root.Properties[top]; ok {
			k.add(&field{path: top, display: top, name: top, s: s})
		}
	}
	return k
}

func (k *kindSchema) add(f *field) {
	k.fields[f.path] = f
	for name, s := range elem(f.s).Properties {
		sep := "."
		if f.isList() {
			sep = "[]."
		}
		k.add(&field{path: f.path + "." + name, display: f.display + sep + name, name: name, s: s, parent: f})
	}
}

// sortedPaths lists every field below spec and status, sorted.
func (k *kindSchema) sortedPaths() []string {
	var out []string
	for p := range k.fields {
		if p != "spec" && p != "status" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

type crdFile struct {
	Spec struct {
		Names struct {
			Kind string `json:"kind"`
		} `json:"names"`
		Versions []struct {
			Name   string `json:"name"`
			Schema struct {
				OpenAPIV3Schema *schema `json:"openAPIV3Schema"`
			} `json:"schema"`
		} `json:"versions"`
	} `json:"spec"`
}

// parseCRD returns the kind and its schema in the given version.
func parseCRD(data []byte, version string) (string, *schema, error) {
	var c crdFile
	if err := yaml.Unmarshal(data, &c); err != nil {
		return "", nil, err
	}
	for _, v := range c.Spec.Versions {
		if v.Name == version && v.Schema.OpenAPIV3Schema != nil {
			return c.Spec.Names.Kind, v.Schema.OpenAPIV3Schema, nil
		}
	}
	return "", nil, fmt.Errorf("no version %s with a schema", version)
}

// loadCRDs reads every CRD in dir: kind to schema.
func loadCRDs(dir, version string) (map[string]*schema, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	out := map[string]*schema{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		kind, s, err := parseCRD(data, version)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out[kind] = s
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no CRDs in %s", dir)
	}
	return out, nil
}

func enumStrings(vals []any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = fmt.Sprint(v)
	}
	return out
}

func quoteAll(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = "`" + v + "`"
	}
	return strings.Join(q, " | ")
}
