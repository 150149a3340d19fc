// Package version says which hakeeper this is: in `hakeeper version`, in
// the manager's and the agents' first log line, and as the
// hakeeper_build_info metric, so an operator can tell which build a
// cluster runs.
package version

import (
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// Version is the release, set at build time:
//
//	go build -ldflags "-X github.com/hakeeper/hakeeper/internal/version.Version=v0.3.0"
//
// `make build` and the Dockerfile set it (from `git describe`, and the
// VERSION build argument); a plain `go build` leaves "dev".
var Version = "dev"

// Info is what a build knows of itself.
type Info struct {
	Version string `json:"version"`
	// Revision is the commit the binary was built from, when the Go tool
	// could read it (a build in a git work tree); "unknown" otherwise.
	Revision  string `json:"revision"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get reads the build's information.
func Get() Info {
	info := Info{Version: Version, Revision: "unknown", GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		modified := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && info.Revision != "unknown" {
			info.Revision += "-dirty"
		}
	}
	return info
}

// KeysAndValues are Info as a logger's key-value pairs.
func (i Info) KeysAndValues() []any {
	return []any{"version", i.Version, "revision", i.Revision, "goVersion", i.GoVersion, "platform", i.Platform}
}

// Collector is the hakeeper_build_info gauge: always 1, the build in its
// labels, as Prometheus's own *_build_info metrics.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "hakeeper", Name: "build_info",
		Help:        "The hakeeper build that runs: always 1, with its version, revision and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": i.Version, "revision": i.Revision, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}
