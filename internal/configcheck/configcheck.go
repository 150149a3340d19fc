// Package configcheck asks the real daemons whether they accept a config:
// `haproxy -c` and `keepalived --config-test`. The agent runs it before it
// applies anything; tests run it on every golden file. The error carries the
// tool's own words, which end up in the LoadBalancer's status.
package configcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// Checker runs the checks. Prefix, if set, wraps each command, for example
// `ip netns exec NAME` so keepalived sees the interfaces the config names.
type Checker struct {
	HAProxy    string
	Keepalived string
	Prefix     []string
}

// Default uses haproxy and keepalived from PATH.
func Default() Checker {
	return Checker{HAProxy: "haproxy", Keepalived: "keepalived"}
}

// Result is what a tool said about a config it accepted.
type Result struct {
	// Warnings are the tool's warning lines; the config is still valid.
	Warnings []string
}

// RejectedError is a config the tool refused, with its output.
type RejectedError struct {
	Tool   string
	Output string
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("%s rejected the config: %s", e.Tool, e.Output)
}

// HAProxyConfig checks the haproxy.cfg at path. HAProxy does not bind
// while checking, but it does open certificates and the server state file.
func (c Checker) HAProxyConfig(ctx context.Context, path string) (Result, error) {
	return c.run(ctx, "haproxy", c.HAProxy, "-c", "-f", path)
}

// KeepalivedConfig checks the keepalived.conf at path. keepalived refuses
// a config naming an interface the network namespace lacks.
func (c Checker) KeepalivedConfig(ctx context.Context, path string) (Result, error) {
	return c.run(ctx, "keepalived", c.Keepalived, "--config-test", "-f", path)
}

func (c Checker) run(ctx context.Context, tool, binary string, args ...string) (Result, error) {
	argv := append(append(append([]string{}, c.Prefix...), binary), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	text := strings.TrimSpace(out.String())
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return Result{}, &RejectedError{Tool: tool, Output: meaningful(text)}
	}
	if err != nil {
		return Result{}, fmt.Errorf("failed to run %s: %w", tool, err)
	}
	return Result{Warnings: warnings(text)}, nil
}

// meaningful drops HAProxy's banner lines, which say nothing about the
// config, and keeps the rest.
func meaningful(text string) string {
	var keep []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "[NOTICE]") && (strings.Contains(line, "haproxy version is") || strings.Contains(line, "path to executable")) {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, "\n")
}

func warnings(text string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "[WARNING]") || strings.Contains(line, "WARNING") {
			out = append(out, strings.TrimSpace(line))
		}
	}
	return out
}
