package cli

import (
	"bufio"
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// document is one object of a manifest file, as users have them: one of
// several YAML documents, or an item of a List as `kubectl get -o yaml`
// prints several objects.
type document struct {
	// where names it in errors: "lb.yaml: document 2", "lb.yaml:
	// document 1, items[3]".
	where            string
	apiVersion, kind string
	name, namespace  string
	data             []byte // JSON
}

// describe is where the document is and what it holds, for errors.
func (d document) describe() string {
	what := d.kind
	switch {
	case d.name != "" && d.namespace != "":
		what += " " + d.namespace + "/" + d.name
	case d.name != "":
		what += " " + d.name
	}
	if what == "" {
		return d.where
	}
	return d.where + " (" + what + ")"
}

// readDocuments splits a YAML or JSON stream into its objects, a List's
// items each on their own. Empty documents are skipped.
func readDocuments(name string, r io.Reader) ([]document, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var out []document
	for n := 1; ; n++ {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		where := fmt.Sprintf("%s: document %d", name, n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			continue
		}
		data, err := yaml.YAMLToJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if string(data) == "null" { // only comments
			continue
		}
		var head struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("%s: not an object: %w", where, err)
		}
		if !strings.HasSuffix(head.Kind, "List") || head.Items == nil {
			d, err := newDocument(where, data)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
			continue
		}
		for i, item := range head.Items {
			d, err := newDocument(fmt.Sprintf("%s, items[%d]", where, i), item)
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
	}
}

func newDocument(where string, data []byte) (document, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name      string `json:"name"`
			Namespace string `json:"namespace"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return document{}, fmt.Errorf("%s: not an object: %w", where, err)
	}
	return document{where: where, apiVersion: meta.APIVersion, kind: meta.Kind,
		name: meta.Metadata.Name, namespace: meta.Metadata.Namespace, data: data}, nil
}

// decode decodes the document strictly into obj. An error names the
// document, its kind and name, and the field by its path, as the API
// server would: "lb.yaml: document 2 (LoadBalancer default/web):
// spec.listeners[0].port: expected integer, got string".
func (d document) decode(obj any) error {
	var loose any
	if err := json.Unmarshal(d.data, &loose); err == nil {
		if path, want, got := mismatch(loose, reflect.TypeOf(obj), ""); path != "" {
			return fmt.Errorf("%s: %s: expected %s, got %s", d.describe(), path, want, got)
		}
	}
	strict, err := kjson.UnmarshalStrict(d.data, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("%s: %w", d.describe(), err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("%s: %w", d.describe(), errors.Join(strict...))
	}
	return nil
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// mismatch finds the first value in v (decoded into any) whose JSON type
// cannot fill the Go type t, and returns its path, what t wants and what
// v holds; "" when none. Types that decode themselves (quantities,
// int-or-strings, times) are left to their own decoding.
func mismatch(v any, t reflect.Type, path string) (at, want, got string) {
	if v == nil {
		return "", "", ""
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshaler) || reflect.PointerTo(t).Implements(textUnmarshaler) {
		return "", "", ""
	}
	name := func(p string) string {
		if p == "" {
			return "(the document)"
		}
		return p
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return name(path), "object", jsonType(v)
		}
		return structMismatch(m, t, path)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			if _, ok := v.(string); !ok {
				return name(path), "string", jsonType(v)
			}
			return "", "", ""
		}
		items, ok := v.([]any)
		if !ok {
			return name(path), "array", jsonType(v)
		}
		for i, item := range items {
			if at, want, got := mismatch(item, t.Elem(), path+"["+strconv.Itoa(i)+"]"); at != "" {
				return at, want, got
			}
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return name(path), "object", jsonType(v)
		}
		for k, item := range m {
			if at, want, got := mismatch(item, t.Elem(), path+"["+strconv.Quote(k)+"]"); at != "" {
				return at, want, got
			}
		}
	case reflect.String:
		if _, ok := v.(string); !ok {
			return name(path), "string", jsonType(v)
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			return name(path), "boolean", jsonType(v)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if f, ok := v.(float64); !ok || f != float64(int64(f)) {
			return name(path), "integer", jsonType(v)
		}
	case reflect.Float32, reflect.Float64:
		if _, ok := v.(float64); !ok {
			return name(path), "number", jsonType(v)
		}
	}
	return "", "", ""
}

// structMismatch walks an object's fields by their JSON names, inlined
// structs (TypeMeta, ObjectMeta's embedding) included. Unknown fields are
// the strict decoder's to report.
func structMismatch(m map[string]any, t reflect.Type, path string) (at, want, got string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := strings.Split(f.Tag.Get("json"), ",")
		if tag[0] == "-" {
			continue
		}
		if tag[0] == "" && (f.Anonymous || slices.Contains(tag[1:], "inline")) {
			if at, want, got := structMismatch(m, derefType(f.Type), path); at != "" {
				return at, want, got
			}
			continue
		}
		key := tag[0]
		if key == "" {
			key = f.Name
		}
		v, ok := m[key]
		if !ok {
			continue
		}
		child := key
		if path != "" {
			child = path + "." + key
		}
		if at, want, got := mismatch(v, f.Type, child); at != "" {
			return at, want, got
		}
	}
	return "", "", ""
}

func derefType(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonType names a decoded JSON value's type.
func jsonType(v any) string {
	switch x := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case bool:
		return "boolean"
	case float64:
		if x == float64(int64(x)) {
			return "integer"
		}
		return "number"
	}
	return "null"
}
