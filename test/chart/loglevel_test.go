package chart

import (
	"flag"
	"io"
	"strings"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// managerAcceptsLogLevel parses --zap-log-level as the manager does
// (internal/cli binds controller-runtime's zap flags).
func managerAcceptsLogLevel(level string) bool {
	var o zap.Options
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.BindFlags(fs)
	return fs.Parse([]string{"--zap-log-level=" + level}) == nil
}

// TestLogLevelSchemaAgreesWithManager: manager.logLevel passes the schema
// exactly when the manager accepts what the chart renders from it, for
// strings and numbers, so no accepted value crash-loops the manager and
// no level it takes is refused. A value the schema refuses is checked as
// the user wrote it.
func TestLogLevelSchemaAgreesWithManager(t *testing.T) {
	strs := []string{"debug", "info", "error", "panic", "DEBUG", "Info", "PaNiC",
		"warn", "warning", "fatal", "dpanic", "trace", "", " info", "info ",
		"0", "1", "2", "5", "10", "127", "128", "255", "-1", "-0", "+3", "007", "00", "1.5", "1e3", "0x10", "5 ",
		"9007199254740993", "999999999999999999", "9223372036854775807", "9223372036854775808", "09223372036854775807",
		"9300000000000000000", "18446744073709551616", "99999999999999999999"}
	numbers := []string{"0", "1", "2", "5", "127", "128", "100000000", "1e8", "-1", "1.5", "9007199254740991"}
	eachHelm(t, func(t *testing.T, h helmCLI) {
		check := func(values, written string) {
			out, err := h.template(chartDir(), append(withValues(t, values), "--show-only", "templates/deployment.yaml")...)
			schemaOK := err == nil
			if err != nil && !strings.Contains(err.Error(), "logLevel") {
				t.Fatalf("%s: %v", values, err)
			}
			rendered := written
			if schemaOK {
				rendered = managerFlags(t, decode(t, out))["zap-log-level"]
			}
			if managerOK := managerAcceptsLogLevel(rendered); schemaOK != managerOK {
				t.Errorf("%s: the schema accepts it: %v; the manager accepts --zap-log-level=%q: %v", values, schemaOK, rendered, managerOK)
			}
		}
		for _, s := range strs {
			check("manager: {logLevel: \""+s+"\"}", s)
		}
		for _, n := range numbers {
			check("manager: {logLevel: "+n+"}", n)
		}
		// --set makes numbers int64.
		for _, n := range []string{"0", "3", "-2"} {
			_, err := h.template(chartDir(), "--set", "manager.logLevel="+n)
			if (err == nil) != managerAcceptsLogLevel(n) {
				t.Errorf("--set manager.logLevel=%s: schema error %v, the manager accepts it: %v", n, err, managerAcceptsLogLevel(n))
			}
		}
	})
}
