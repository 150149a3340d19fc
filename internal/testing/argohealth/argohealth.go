// Package argohealth evaluates hack/argocd's health.lua the way Argo CD
// evaluates its built-in health checks: gopher-lua with the base, table,
// string and math libraries, the object as the global obj, and the
// returned table's status and message. test/argocd runs it on the
// checked-in testdata, test/e2e on LoadBalancers live in the lab.
package argohealth

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	lua "github.com/yuin/gopher-lua"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// Health is what a health.lua returns.
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

// Dir is Argo CD's layout for the LoadBalancer check:
// hakeeper.io/LoadBalancer/{health.lua,health_test.yaml,testdata/}.
func Dir() string {
	return filepath.Join(testenv.RepoRoot(), "hack", "argocd", "hakeeper.io", "LoadBalancer")
}

// Script reads health.lua.
func Script() (string, error) {
	data, err := os.ReadFile(filepath.Join(Dir(), "health.lua"))
	return string(data), err
}

// Evaluate runs script with obj as the global obj.
func Evaluate(script string, obj map[string]any) (Health, error) {
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
		return Health{}, err
	}
	ret, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return Health{}, fmt.Errorf("health.lua returned %v, not a table", l.Get(-1))
	}
	h := Health{Status: lua.LVAsString(ret.RawGetString("status")), Message: lua.LVAsString(ret.RawGetString("message"))}
	if h.Status == "" {
		return h, errors.New("health.lua returned no status")
	}
	return h, nil
}

// toLua converts decoded JSON (maps, lists, strings, numbers, booleans)
// into Lua values as Argo CD does: lists become 1-based tables, every
// number a Lua number (unstructured objects hold integers as int64).
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
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case bool:
		return lua.LBool(v)
	default:
		return lua.LNil
	}
}
