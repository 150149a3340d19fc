// Package keepalivedctl is how the agent reaches keepalived's supervisor:
// a unix socket in keepalived's run directory, one command a connection,
// one line each way. The data-plane containers do not share a process
// namespace (HAProxy must not be able to signal keepalived), so the agent
// cannot send keepalived SIGHUP itself; the supervisor, keepalived's
// parent, does it, after writing the VRRP filter for the new peers.
package keepalivedctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// The commands.
const (
	// CommandReload: write the VRRP filter from the peers file, then make
	// keepalived read its config again.
	CommandReload = "reload"
	// CommandFilter: write the VRRP filter from the peers file only (the
	// nodes changed, keepalived.conf did not).
	CommandFilter = "filter"
	// CommandStatus: whether keepalived runs.
	CommandStatus = "status"
)

// The answers.
const (
	answerOK      = "ok"
	answerRunning = "running"
	answerStopped = "stopped"
	errorPrefix   = "error: "
)

// Handler carries out the commands.
type Handler interface {
	// Reload writes the filter and signals keepalived.
	Reload() error
	// Filter writes the filter.
	Filter() error
	// Running tells whether keepalived runs.
	Running() bool
}

// Serve answers on socket until ctx ends. It replaces a socket left by an
// earlier supervisor.
func Serve(ctx context.Context, socket string, h Handler) error {
	_ = os.Remove(socket)
	l, err := net.Listen("unix", socket)
	if err != nil {
		return err
	}
	if err := os.Chmod(socket, 0o600); err != nil {
		_ = l.Close()
		return err
	}
	go func() {
		<-ctx.Done()
		_ = l.Close()
	}()
	for {
		conn, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// One at a time: a reload must finish before the next command.
		serveOne(conn, h)
	}
}

func serveOne(conn net.Conn, h Handler) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return
	}
	var answer string
	switch strings.TrimSpace(line) {
	case CommandReload:
		answer = answerOK
		if err := h.Reload(); err != nil {
			answer = errorPrefix + oneLine(err.Error())
		}
	case CommandFilter:
		answer = answerOK
		if err := h.Filter(); err != nil {
			answer = errorPrefix + oneLine(err.Error())
		}
	case CommandStatus:
		answer = answerStopped
		if h.Running() {
			answer = answerRunning
		}
	default:
		answer = errorPrefix + "unknown command"
	}
	_, _ = fmt.Fprintln(conn, answer)
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }

// ask sends one command and returns the answer line.
func ask(ctx context.Context, socket, command string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", socket)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(15 * time.Second)
	}
	_ = conn.SetDeadline(deadline)
	if _, err := fmt.Fprintln(conn, command); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("keepalived's supervisor did not answer %s: %w", command, err)
	}
	answer := strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(answer, errorPrefix); ok {
		return "", errors.New(msg)
	}
	return answer, nil
}

// Reload asks the supervisor to write the VRRP filter and reload
// keepalived.
func Reload(ctx context.Context, socket string) error {
	return expectOK(ctx, socket, CommandReload, "reloading keepalived")
}

// Filter asks the supervisor to write the VRRP filter for new peers,
// without reloading keepalived.
func Filter(ctx context.Context, socket string) error {
	return expectOK(ctx, socket, CommandFilter, "writing the VRRP filter")
}

func expectOK(ctx context.Context, socket, command, what string) error {
	answer, err := ask(ctx, socket, command)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if answer != answerOK {
		return fmt.Errorf("%s: unexpected answer %q", what, answer)
	}
	return nil
}

// Running tells whether keepalived runs; a supervisor that does not answer
// means it does not.
func Running(ctx context.Context, socket string) bool {
	answer, err := ask(ctx, socket, CommandStatus)
	return err == nil && answer == answerRunning
}
