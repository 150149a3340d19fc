package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// What the daemons' own checks do not try: HAProxy's -c neither binds the
// listeners nor raises its file limit, so a config can pass it and still
// fail at reload. checkFileLimit refuses the second kind before it reaches
// HAProxy; bindConflicts explains the first after a refused reload.

// fdsPerConnection: HAProxy needs a descriptor on each side of a
// connection, and raises its limit to about twice maxconn at start.
const fdsPerConnection = 2

// fdReserve covers listeners, servers' checks, sockets and files.
const fdReserve = 100

// checkFileLimit refuses a haproxy.cfg whose global maxconn needs more
// open files than the node gives a container: limit, or when 0 the hard
// RLIMIT_NOFILE, which the agent's container shares with HAProxy's.
func checkFileLimit(cfg string, limit uint64) error {
	if limit == 0 {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return nil // unknown: the reload's verification still catches it
		}
		limit = rl.Max
	}
	return fileLimitError(cfg, limit)
}

func fileLimitError(cfg string, limit uint64) error {
	maxconn, ok := globalMaxconn(cfg)
	if !ok {
		return nil
	}
	need := uint64(maxconn)*fdsPerConnection + fdReserve
	if need > limit {
		return fmt.Errorf("haproxy.cfg: maxconn %d needs about %d open files, and this node allows %d (RLIMIT_NOFILE): lower spec.haproxy.maxConnections to at most %d",
			maxconn, need, limit, (limit-min(limit, fdReserve))/fdsPerConnection)
	}
	return nil
}

// globalMaxconn reads maxconn from the global section.
func globalMaxconn(cfg string) (int, bool) {
	inGlobal := false
	for _, line := range strings.Split(cfg, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if !strings.HasPrefix(line, " ") && !strings.HasPrefix(line, "\t") {
			inGlobal = f[0] == "global"
			continue
		}
		if inGlobal && f[0] == "maxconn" && len(f) == 2 {
			n, err := strconv.Atoi(f[1])
			return n, err == nil
		}
	}
	return 0, false
}

// bindConflicts tries each address the new config binds and the old one
// did not, as HAProxy would (SO_REUSEADDR, and freebind since a backup
// binds virtual IPs it does not hold), and says which are taken: the usual
// reason a checked config fails at reload. Privileged ports cannot be
// tried (the agent holds no capability).
func bindConflicts(oldCfg, newCfg string) string {
	old := bindAddresses(oldCfg)
	var taken []string
	for _, addr := range bindAddresses(newCfg) {
		if slices.Contains(old, addr) {
			continue
		}
		if err := tryBind(addr); errors.Is(err, syscall.EADDRINUSE) {
			taken = append(taken, fmt.Sprintf("bind %s: address already in use", addr))
		}
	}
	if len(taken) == 0 {
		return ""
	}
	return "on this node " + strings.Join(taken, ", ")
}

// bindAddresses lists the host:port addresses of bind lines (unix sockets
// left out).
func bindAddresses(cfg string) []string {
	var out []string
	for _, line := range strings.Split(cfg, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "bind" || strings.HasPrefix(f[1], "/") {
			continue
		}
		if _, _, err := net.SplitHostPort(f[1]); err == nil {
			out = append(out, f[1])
		}
	}
	return out
}

func tryBind(addr string) error {
	lc := net.ListenConfig{Control: func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if serr == nil && network == "tcp6" {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
			} else if serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_IP, unix.IP_FREEBIND, 1)
			}
		})
		return errors.Join(err, serr)
	}}
	l, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// serversOnThisNode refuses a config with a server at one of the node's
// own addresses or a loopback one: HAProxy, on the host's network, would
// reach the node itself. The operator leaves such servers out once the
// agents have reported the addresses; this covers a node whose agent has
// not yet.
func serversOnThisNode(servers contract.ServerSet, own []string) error {
	for backend, list := range servers.Backends {
		for _, s := range list {
			addr, err := netip.ParseAddr(s.Address)
			if err != nil || addr.IsUnspecified() {
				continue // a name (older operators) or an empty slot
			}
			if addr.Unmap().IsLoopback() || slices.Contains(own, addr.Unmap().String()) {
				return fmt.Errorf("haproxy.cfg not applied: server %s of %s is at %s, an address of this node; the last good config keeps serving",
					s.Name, backend, s.Address)
			}
		}
	}
	return nil
}
