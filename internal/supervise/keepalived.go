package supervise

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hakeeper/hakeeper/internal/contract/layout"
	"github.com/hakeeper/hakeeper/internal/ifaddr"
	"github.com/hakeeper/hakeeper/internal/keepalivedconf"
	"github.com/hakeeper/hakeeper/internal/keepalivedctl"
	"github.com/hakeeper/hakeeper/internal/procstat"
	"github.com/hakeeper/hakeeper/internal/vrrpfilter"
	"golang.org/x/sys/unix"
)

// Keepalived runs keepalived as its child and removes the
// virtual IPs keepalived.conf names from the node's interfaces whenever no
// keepalived runs: before starting it (a keepalived killed earlier, with
// its container or its pod, left them behind) and the moment it exits for
// any reason. keepalived releases its addresses only when it stops
// cleanly; a SIGKILL, a crash or an OOM kill leaves them on a node that no
// longer takes part in VRRP, so two nodes answer for the VIP.
//
// It is a child subreaper: keepalived's VRRP process, orphaned when its
// parent dies, becomes this process's child and is stopped too, since a
// VRRP process left running could keep advertising as master.
func Keepalived(ctx context.Context, args []string, s Streams) error {
	fs := flag.NewFlagSet("keepalived", flag.ContinueOnError)
	fs.SetOutput(s.Err)
	defaults := layout.Default()
	config := fs.String("config", defaults.KeepalivedConfig(),
		"keepalived.conf, whose virtual_ipaddress blocks say what to remove and whose router ID the VRRP filter guards")
	peers := fs.String("peers", "", "the file of addresses VRRP adverts are accepted from (empty: no VRRP filter)")
	control := fs.String("control", "", "the socket the agent asks for reloads on (empty: none)")
	tableSuffix := fs.String("table-suffix", "", "ends the VRRP filter's nftables table name: the pod's UID")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("usage: hakeeper-supervise keepalived [--config=PATH] [--peers=PATH --table-suffix=UID] [--control=SOCKET] -- keepalived ARGS...")
	}
	if *peers != "" && *tableSuffix == "" {
		return errors.New("--peers needs --table-suffix")
	}
	logf := func(format string, a ...any) {
		fmt.Fprintf(s.Err, "hakeeper-supervise keepalived: "+format+"\n", a...)
	}
	if err := setChildSubreaper(); err != nil {
		return fmt.Errorf("becoming a child subreaper: %w", err)
	}
	// Signals first, so no SIGCHLD is missed.
	signals := make(chan os.Signal, 16)
	signal.Notify(signals, syscall.SIGCHLD, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGQUIT)
	defer signal.Stop(signals)

	releaseVirtualIPs(ctx, *config, logf)
	filter := vrrpFilter{config: *config, peers: *peers, suffix: *tableSuffix}
	// No keepalived without its filter: an unfiltered one would take any
	// forged advert for its router ID. The container restarts and says
	// why; the other nodes keep the virtual IPs.
	if err := filter.write(); err != nil {
		return err
	}
	defer filter.remove(logf)
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	removePIDFiles(argv, logf)
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{os.Stdin.Fd(), fdOf(s.Out), fdOf(s.Err)},
		// If this process is killed, keepalived is told to stop cleanly
		// (it then releases the addresses itself).
		Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM},
	})
	if err != nil {
		return err
	}
	var running atomic.Bool
	running.Store(true)
	// The filter is written on this goroutine only: the netlink socket
	// belongs to the network namespace of the thread that opens it, and
	// this one is in the node's (in a test, locked in a namespace of its
	// own); the control socket's goroutine asks it here.
	writes := make(chan chan error)
	if *control != "" {
		ctl := &keepalivedControl{writes: writes, pid: pid, running: &running}
		serveCtx, stopServing := context.WithCancel(ctx)
		defer stopServing()
		go func() {
			if err := keepalivedctl.Serve(serveCtx, *control, ctl); err != nil {
				logf("control socket %s: %v", *control, err)
			}
		}()
	}
	stopping := false
	for {
		var sig os.Signal
		select {
		case done := <-writes:
			err := filter.write()
			if err != nil {
				logf("%v; the filter and keepalived keep what they had", err)
			}
			done <- err
			continue
		case sig = <-signals:
		}
		if sig != syscall.SIGCHLD {
			stopping = stopping || sig == syscall.SIGTERM || sig == syscall.SIGINT
			_ = syscall.Kill(pid, sig.(syscall.Signal))
			continue
		}
		status, exited := reap(pid)
		if !exited {
			continue
		}
		running.Store(false)
		// keepalived's own children, now this process's, go too.
		stopOrphans(logf)
		releaseVirtualIPs(ctx, *config, logf)
		if stopping && status.Exited() && status.ExitStatus() == 0 {
			return nil
		}
		return fmt.Errorf("keepalived exited (%s)", describe(status))
	}
}

// removePIDFiles removes the pid files keepalived's arguments name
// (--pid=, --vrrp_pid=) before it starts: none of the processes they
// name runs (this supervisor starts keepalived, in a container of its
// own), and they outlive a restarted container in the pod's run
// directory. The container's process namespace starts over, so the new
// keepalived may get the very pid the file holds, and then takes itself
// for a keepalived already running and exits ("daemon is already
// running", seen in the lab after keepalived was killed).
func removePIDFiles(argv []string, logf func(string, ...any)) {
	for _, arg := range argv[1:] {
		for _, flag := range []string{"--pid=", "--vrrp_pid="} {
			if file, ok := strings.CutPrefix(arg, flag); ok {
				if err := os.Remove(file); err != nil && !errors.Is(err, os.ErrNotExist) {
					logf("removing %s: %v", file, err)
				}
			}
		}
	}
}

// vrrpFilter is this pod's VRRP filter: adverts for keepalived.conf's
// router ID only from the addresses in the peers file.
type vrrpFilter struct {
	config, peers, suffix string
	table                 string // the one written, if any
}

// write writes the filter from the files as they are now.
func (f *vrrpFilter) write() error {
	if f.peers == "" {
		return nil
	}
	conf, err := os.ReadFile(f.config)
	if err != nil {
		return fmt.Errorf("the VRRP filter needs keepalived.conf: %w", err)
	}
	routerID, ipv6, err := keepalivedconf.Instance(conf)
	if err != nil {
		return fmt.Errorf("the VRRP filter needs keepalived.conf's instance: %w", err)
	}
	data, err := os.ReadFile(f.peers)
	if err != nil {
		return fmt.Errorf("the VRRP filter needs its peers: %w", err)
	}
	peers, err := vrrpfilter.ParsePeers(data)
	if err != nil {
		return fmt.Errorf("%s: %w", f.peers, err)
	}
	table := vrrpfilter.TableName(routerID, f.suffix)
	if err := vrrpfilter.Apply(table, vrrpfilter.Filter{RouterID: routerID, IPv6: ipv6, Peers: peers}); err != nil {
		return fmt.Errorf("writing the VRRP filter: %w", err)
	}
	if f.table != "" && f.table != table {
		// The router ID changed (a pinned one): the old one's filter goes.
		_ = vrrpfilter.Remove(f.table)
	}
	f.table = table
	return nil
}

// remove deletes the filter once keepalived has stopped: the pod goes.
func (f *vrrpFilter) remove(logf func(string, ...any)) {
	if f.table == "" {
		return
	}
	if err := vrrpfilter.Remove(f.table); err != nil {
		logf("removing the VRRP filter %s: %v", f.table, err)
	}
}

// keepalivedControl answers the agent: a reload writes the filter for the
// new peers before keepalived reads the new config, so a node added to
// the LoadBalancer is heard from the moment it is configured.
type keepalivedControl struct {
	writes  chan<- chan error // to the goroutine that writes the filter
	pid     int
	running *atomic.Bool
}

func (c *keepalivedControl) Reload() error {
	if !c.running.Load() {
		return errors.New("keepalived is not running")
	}
	if err := c.Filter(); err != nil {
		return err
	}
	return syscall.Kill(c.pid, syscall.SIGHUP)
}

func (c *keepalivedControl) Filter() error {
	done := make(chan error, 1)
	select {
	case c.writes <- done:
		return <-done
	case <-time.After(10 * time.Second):
		return errors.New("the supervisor did not write the VRRP filter in 10 s")
	}
}

func (c *keepalivedControl) Running() bool { return c.running.Load() }

// reap collects every child that has exited and tells whether main was
// one of them, with its status.
func reap(main int) (syscall.WaitStatus, bool) {
	var mainStatus syscall.WaitStatus
	found := false
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return mainStatus, found
		}
		if pid == main {
			mainStatus, found = ws, true
		}
	}
}

// stopOrphans ends whatever children are left (keepalived's VRRP process
// after its parent died): SIGTERM, so it releases its addresses itself,
// then SIGKILL after a second.
func stopOrphans(logf func(string, ...any)) {
	children := childrenOf(os.Getpid())
	if len(children) == 0 {
		return
	}
	logf("stopping keepalived's orphaned processes %v", children)
	for _, c := range children {
		_ = syscall.Kill(c, syscall.SIGTERM)
	}
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) && len(childrenOf(os.Getpid())) > 0 {
		reapAll()
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range childrenOf(os.Getpid()) {
		_ = syscall.Kill(c, syscall.SIGKILL)
	}
	for range 50 {
		reapAll()
		if len(childrenOf(os.Getpid())) == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func reapAll() {
	for {
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); err != nil || pid <= 0 {
			return
		}
	}
}

// releaseVirtualIPs removes from the interfaces every address the config
// names. Only this LoadBalancer's keepalived manages them on this node
// (virtual IPs are unique across LoadBalancers), and none runs now.
func releaseVirtualIPs(ctx context.Context, config string, logf func(string, ...any)) {
	data, err := os.ReadFile(config)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			logf("reading %s: %v", config, err)
		}
		return
	}
	addrs, err := keepalivedconf.VirtualAddresses(data)
	if err != nil {
		logf("reading the virtual IPs of %s: %v", config, err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, a := range addrs {
		removed, err := ifaddr.Remove(ctx, a.Interface, a.Prefix.Addr())
		switch {
		case err != nil:
			logf("%v", err)
		case removed:
			logf("removed %s from %s: no keepalived runs to hold it", a.Prefix.Addr(), a.Interface)
		}
	}
}

func describe(ws syscall.WaitStatus) string {
	if ws.Signaled() {
		return "killed by " + ws.Signal().String()
	}
	return fmt.Sprintf("exit status %d", ws.ExitStatus())
}

func setChildSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// fdOf is the descriptor keepalived writes its log to: the stream's own
// when it is a file (the container's stdout), else this process's.
func fdOf(w io.Writer) uintptr {
	if f, ok := w.(*os.File); ok {
		return f.Fd()
	}
	return os.Stderr.Fd()
}

// childrenOf lists the live processes whose parent is pid, from /proc.
func childrenOf(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := procstat.Read(child); err == nil && !st.Zombie() && st.PPID == pid {
			out = append(out, child)
		}
	}
	return out
}
