// Package haproxyapi talks to HAProxy's runtime API and master CLI over
// their unix sockets.
package haproxyapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Command sends one command to a runtime or master socket and returns the
// answer. HAProxy closes the connection after answering a single command.
func Command(ctx context.Context, socket, command string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", fmt.Errorf("failed to connect to %s: %w", socket, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline)
	} else {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	}
	if _, err := io.WriteString(conn, command+"\n"); err != nil {
		return "", fmt.Errorf("failed to send %q: %w", command, err)
	}
	out, err := io.ReadAll(conn)
	if err != nil {
		return "", fmt.Errorf("failed to read the answer to %q: %w", command, err)
	}
	return string(out), nil
}

// Alive asks HAProxy for its info and checks that it answers as HAProxy.
func Alive(ctx context.Context, socket string) error {
	out, err := Command(ctx, socket, "show info")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Name: HAProxy") {
		return fmt.Errorf("unexpected answer to show info: %.200q", out)
	}
	return nil
}
