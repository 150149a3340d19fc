package manager

import (
	"strings"
	"testing"
)

// TestValidateNamesTheFlag: a wrong option stops the manager before it
// starts, with the flag it came from.
func TestValidateNamesTheFlag(t *testing.T) {
	good := func() Options {
		return Options{DataPlaneNamespace: "hakeeper-system", DataPlaneImage: "img", ProbeAddr: ":8081",
			DataPlaneMetricsBasePort: 9800, DataPlaneHealthBasePort: 19000, DataPlaneImagePullSecrets: []string{"registry", "mirror.example"}}
	}
	if o := good(); o.Validate() != nil {
		t.Fatalf("good options refused: %v", o.Validate())
	}
	for _, c := range []struct {
		name   string
		change func(*Options)
		want   string
	}{
		{"a pull secret that is not a name", func(o *Options) { o.DataPlaneImagePullSecrets = []string{"registry", "Not A Name"} }, `--dataplane-image-pull-secrets: "Not A Name"`},
		{"an empty pull secret (a trailing comma)", func(o *Options) { o.DataPlaneImagePullSecrets = []string{"registry", ""} }, "--dataplane-image-pull-secrets"},
		{"metrics ports past 65535", func(o *Options) { o.DataPlaneMetricsBasePort = 65400 }, "--dataplane-metrics-base-port"},
		{"no pull policy of Kubernetes", func(o *Options) { o.PullPolicy = "Sometimes" }, "--image-pull-policy"},
	} {
		o := good()
		c.change(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", c.name, err, c.want)
		}
	}
}
