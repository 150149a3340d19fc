// Package argocd evaluates hack/argocd's health.lua the way Argo CD
// evaluates its built-in health checks: gopher-lua with the base, table,
// string and math libraries, the object as the global obj, the returned
// table's status and message compared whole with health_test.yaml.
package argocd

import (
	"os"
	"path/filepath"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/internal/testenv"
)

// health is what a health.lua returns.
type health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func checkDir() string {
	return filepath.Join(testenv.RepoRoot(), "hack", "argocd", "hakeeper.io", "LoadBalancer")
}

// toLua converts decoded JSON (maps, lists, strings, numbers, booleans)
// into Lua values as Argo CD does: lists become 1-based tables.
func toLua(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := l.NewTable()
		for k, e := range v {
			t.RawSetString(k, toLua(l, e))
		}
		return t
	case []any:
		t := l.NewTable()
		for _, e := range v {
			t.Append(toLua(l, e))
		}
		return t
	case string:
		return lua.LString(v)
	case float64:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}

func evaluate(t *testing.T, script string, obj map[string]any) health {
	t.Helper()
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{{lua.BaseLibName, lua.OpenBase}, {lua.TabLibName, lua.OpenTable}, {lua.StringLibName, lua.OpenString}, {lua.MathLibName, lua.OpenMath}} {
		l.Push(l.NewFunction(lib.open))
		l.Push(lua.LString(lib.name))
		l.Call(1, 0)
	}
	l.SetGlobal("obj", toLua(l, obj))
	if err := l.DoString(script); err != nil {
		t.Fatal(err)
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("health.lua returned %v, not a table", l.Get(-1))
	}
	return health{Status: lua.LVAsString(ret.RawGetString("status")), Message: lua.LVAsString(ret.RawGetString("message"))}
}

func TestHealth(t *testing.T) {
	script, err := os.ReadFile(filepath.Join(checkDir(), "health.lua"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(checkDir(), "health_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cases struct {
		Tests []struct {
			HealthStatus health `json:"healthStatus"`
			InputPath    string `json:"inputPath"`
		} `json:"tests"`
	}
	if err := yaml.UnmarshalStrict(data, &cases); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, tc := range cases.Tests {
		t.Run(tc.InputPath, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(checkDir(), tc.InputPath))
			if err != nil {
				t.Fatal(err)
			}
			var obj map[string]any
			if err := yaml.Unmarshal(raw, &obj); err != nil {
				t.Fatal(err)
			}
			if got := evaluate(t, string(script), obj); got != tc.HealthStatus {
				t.Errorf("got %+v\nwant %+v", got, tc.HealthStatus)
			}
		})
		seen[tc.HealthStatus.Status] = true
	}
	for _, want := range []string{"Healthy", "Progressing", "Degraded"} {
		if !seen[want] {
			t.Errorf("no case ends %s", want)
		}
	}
}
