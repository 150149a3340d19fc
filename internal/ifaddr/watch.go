package ifaddr

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Watch tells, on the returned channel, that some interface of the
// network namespace gained or lost an address: the kernel's rtnetlink
// address notifications, so a reader of Held looks again when a virtual IP
// moves instead of polling. Notifications are coalesced (the channel holds
// one) and carry nothing: the reader reads what it wants, so
// notifications the kernel dropped for a slow reader (ENOBUFS) are told
// as one more. Joining the notification groups needs no capability. The
// channel closes when ctx ends or the socket fails.
func Watch(ctx context.Context) (<-chan struct{}, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("failed to open an rtnetlink socket: %w", err)
	}
	groups := uint32(unix.RTMGRP_IPV4_IFADDR | unix.RTMGRP_IPV6_IFADDR)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK, Groups: groups}); err != nil {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("failed to join rtnetlink's address groups: %w", err)
	}
	// Non-blocking, so reads go through Go's poller and Close ends them.
	f := os.NewFile(uintptr(fd), "rtnetlink")
	events := make(chan struct{}, 1)
	go func() { <-ctx.Done(); _ = f.Close() }()
	go func() {
		defer close(events)
		buf := make([]byte, 16<<10)
		for {
			if _, err := f.Read(buf); err != nil && !errors.Is(err, unix.ENOBUFS) {
				return
			}
			select {
			case events <- struct{}{}:
			default:
			}
		}
	}()
	return events, nil
}
