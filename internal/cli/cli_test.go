package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/hakeeper/hakeeper/internal/version"
)

// TestHelpAndExitCodes: help asked for goes to standard output and exits
// 0, for hakeeper and every subcommand; a usage error goes to standard
// error and exits 2 (no command) or 1.
func TestHelpAndExitCodes(t *testing.T) {
	for _, c := range []struct {
		args      []string
		code      int
		out, err  string // in stdout, in stderr
		quietOut  bool   // nothing on stdout
		quietErrs bool   // nothing on stderr
	}{
		{args: []string{"-h"}, code: 0, out: "Usage: hakeeper <command>", quietErrs: true},
		{args: []string{"--help"}, code: 0, out: "version", quietErrs: true},
		{args: []string{"help"}, code: 0, out: "render", quietErrs: true},
		{args: nil, code: 2, err: "Usage: hakeeper <command>", quietOut: true},
		{args: []string{"nope"}, code: 2, err: `unknown command "nope"`, quietOut: true},
		{args: []string{"render", "-h"}, code: 0, out: "Usage: hakeeper render", quietErrs: true},
		{args: []string{"render", "--help"}, code: 0, out: "-servers", quietErrs: true},
		{args: []string{"manager", "-h"}, code: 0, out: "-leader-elect", quietErrs: true},
		{args: []string{"agent", "-h"}, code: 0, out: "-idle-health-interval", quietErrs: true},
		{args: []string{"probe", "-h"}, code: 0, out: "usage: hakeeper probe haproxy", quietErrs: true},
		{args: []string{"version", "-h"}, code: 0, out: "-o", quietErrs: true},
		{args: []string{"render", "--no-such-flag"}, code: 1, err: "flag provided but not defined", quietOut: true},
		{args: []string{"version", "-o", "yaml"}, code: 1, err: `-o "yaml"`, quietOut: true},
	} {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), c.args, Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
		if code != c.code || !strings.Contains(out.String(), c.out) || !strings.Contains(errOut.String(), c.err) ||
			(c.quietOut && out.Len() > 0) || (c.quietErrs && errOut.Len() > 0) {
			t.Errorf("hakeeper %v: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				c.args, code, out.String(), errOut.String(), c.code, c.out, c.err)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if code := Run(context.Background(), []string{"version"}, Streams{Out: &out, Err: &out}); code != 0 ||
		!strings.HasPrefix(out.String(), "hakeeper "+version.Version+" (revision ") {
		t.Errorf("hakeeper version: exit %d, %q", code, out.String())
	}
	out.Reset()
	var got version.Info
	if code := Run(context.Background(), []string{"version", "-o", "json"}, Streams{Out: &out, Err: &out}); code != 0 ||
		json.Unmarshal(out.Bytes(), &got) != nil || got != version.Get() {
		t.Errorf("hakeeper version -o json: exit %d, %q", code, out.String())
	}
}
