package haproxyapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// HoldMaster connects to HAProxy's master CLI and keeps the connection open
// in interactive mode ("prompt") until HAProxy's master closes it: when the
// master exits (the kernel closes its sockets with the process) or
// re-executes itself for a reload. It returns once the connection is open
// and ready; closed is closed when the master ends it, or ctx ends. It is
// how a death is seen the moment it happens rather than at the next poll.
func HoldMaster(ctx context.Context, socket string) (closed <-chan struct{}, err error) {
	var d net.Dialer
	dialCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	conn, err := d.DialContext(dialCtx, "unix", socket)
	if err != nil {
		return nil, fmt.Errorf("failed to connect to %s: %w", socket, err)
	}
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := io.WriteString(conn, "prompt\n"); err != nil {
		conn.Close()
		return nil, fmt.Errorf("failed to enter interactive mode: %w", err)
	}
	// The prompt ("master> ") says the master took the command and keeps
	// the connection.
	buf := make([]byte, 64)
	if _, err := conn.Read(buf); err != nil {
		conn.Close()
		return nil, fmt.Errorf("no prompt from %s: %w", socket, err)
	}
	_ = conn.SetDeadline(time.Time{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close()
		stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
		defer stop()
		// Nothing is sent, so nothing but the end arrives.
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	return done, nil
}

// Gone tells whether err, from connecting to one of HAProxy's sockets,
// says no process listens there any more: refused, the socket file gone,
// or a connection the dying listener's backlog took and then reset. A
// timeout is not one: a busy HAProxy is still there.
func Gone(err error) bool {
	return err != nil && (errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE))
}
