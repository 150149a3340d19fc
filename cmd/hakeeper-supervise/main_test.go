package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/hakeeper/hakeeper/internal/supervise"
)

func TestUsageAndExitCodes(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{[]string{"-h"}, 0, "usage: hakeeper-supervise", ""},
		{nil, 2, "usage: hakeeper-supervise", ""},
		{[]string{"haproxy", "-h"}, 0, "", "-track-file"},
		{[]string{"nginx"}, 2, "", `unknown command "nginx"`},
		{[]string{"haproxy"}, 1, "", "usage: hakeeper-supervise haproxy"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), c.args, supervise.Streams{Out: &out, Err: &errOut})
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errOut.String(), c.err) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d, %q, %q", c.args, code, out.String(), errOut.String(), c.code, c.out, c.err)
		}
	}
}

// TestLinksNoKubernetesClient: the point of this binary, two of which run
// in every data-plane pod, is to leave out the packages whose
// initialisation costs the hakeeper binary several MiB per process.
func TestLinksNoKubernetesClient(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, heavy := range []string{"k8s.io/", "sigs.k8s.io/", "github.com/prometheus/", "google.golang.org/protobuf"} {
			if strings.HasPrefix(dep, heavy) {
				t.Errorf("hakeeper-supervise links %s", dep)
			}
		}
	}
}
