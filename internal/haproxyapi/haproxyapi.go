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
	// End of input: the master CLI, unlike the runtime API, would otherwise
	// wait for another command.
	if uc, ok := conn.(*net.UnixConn); ok {
		_ = uc.CloseWrite()
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

// MasterCommand sends a command to the master CLI. The master refuses
// connections for a moment after each reload, so connecting is retried
// for up to two seconds.
func MasterCommand(ctx context.Context, socket, command string) (string, error) {
	var last error
	for range 40 {
		out, err := Command(ctx, socket, command)
		if err == nil {
			return out, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return "", last
}
