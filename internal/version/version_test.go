package version

import (
	"runtime"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBuildInfo(t *testing.T) {
	old := Version
	t.Cleanup(func() { Version = old })
	Version = "v9.9.9-test"
	i := Get()
	if i.Version != "v9.9.9-test" || i.GoVersion != runtime.Version() || i.Platform != runtime.GOOS+"/"+runtime.GOARCH || i.Revision == "" {
		t.Errorf("Get() = %+v", i)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(Collector())
	want := `# HELP hakeeper_build_info The hakeeper build that runs: always 1, with its version, revision and Go version as labels.
# TYPE hakeeper_build_info gauge
hakeeper_build_info{goversion="` + runtime.Version() + `",revision="` + i.Revision + `",version="v9.9.9-test"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "hakeeper_build_info"); err != nil {
		t.Error(err)
	}
}
