package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	ctrl "sigs.k8s.io/controller-runtime"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/hakeeper/hakeeper/internal/version"
)

// announce starts a long-running command (the manager, an agent): its
// first log line says which build runs, and hakeeper_build_info says it
// to Prometheus. The logger must be set up.
func announce(what string) error {
	ctrl.Log.WithName("setup").Info("Starting the "+what, version.Get().KeysAndValues()...)
	if err := ctrlmetrics.Registry.Register(version.Collector()); err != nil {
		if !errors.As(err, new(prometheus.AlreadyRegisteredError)) {
			return err
		}
	}
	return nil
}

func runVersion(_ context.Context, args []string, s Streams) error {
	fs := newFlagSet("version", args, s)
	output := fs.String("o", "", "output format: empty for one line, or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	i := version.Get()
	switch *output {
	case "":
		_, err := fmt.Fprintf(s.Out, "hakeeper %s (revision %s, %s, %s)\n", i.Version, i.Revision, i.GoVersion, i.Platform)
		return err
	case "json":
		data, err := json.MarshalIndent(i, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(s.Out, "%s\n", data)
		return err
	}
	return fmt.Errorf("-o %q: want json or nothing", *output)
}
