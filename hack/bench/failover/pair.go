package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// pairTuning is how a hand-written HAProxy + Keepalived pair is set up: a
// vrrp_script that checks HAProxy's process every scriptInterval, and
// VRRP adverts every advert.
type pairTuning struct {
	name           string
	vrrpVersion    int
	advert         string // keepalived's advert_int, seconds
	scriptInterval int    // seconds
}

// The pairs compared with hakeeper: as the common tutorials write them
// (VRRPv2, advert 1 s, a check every 2 s, PASS authentication) and as an
// operator tunes them by hand (VRRPv3, 100 ms and 50 ms adverts, a check
// every second, keepalived's shortest script interval).
var pairTunings = []pairTuning{
	{name: "tutorial pair (v2, advert 1 s, check 2 s)", vrrpVersion: 2, advert: "1", scriptInterval: 2},
	{name: "tuned pair (v3, advert 100 ms, check 1 s)", vrrpVersion: 3, advert: "0.1", scriptInterval: 1},
	{name: "tuned pair (v3, advert 50 ms, check 1 s)", vrrpVersion: 3, advert: "0.05", scriptInterval: 1},
}

// pair is one hand-written pair running on node-a (MASTER, priority 101)
// and node-b (BACKUP, 100), outside Kubernetes, in the nodes' network
// namespaces next to hakeeper's pods: its own VIP, virtual router ID and
// port. The check script tests this pair's HAProxy by its pid (the lab's
// nodes share one pid namespace, so the tutorials' `killall -0 haproxy`
// would see every node's HAProxy).
type pair struct {
	tuning pairTuning
	l      *lab.Lab
	dir    string
	vip    string
	port   int
	vrid   int
	nodes  [2]string
	// haproxy and keepalived are the running process groups, per node.
	haproxy, keepalived [2]*exec.Cmd
}

func newPair(l *lab.Lab, dir string, i int, t pairTuning) *pair {
	return &pair{tuning: t, l: l, dir: filepath.Join(dir, fmt.Sprintf("pair-%d", i)),
		vip: lab.Prefix + strconv.Itoa(120+i), port: 8081 + i, vrid: 201 + i,
		nodes: [2]string{lab.NodeName(0), lab.NodeName(1)}}
}

func (p *pair) name() string    { return p.tuning.name }
func (p *pair) url() string     { return fmt.Sprintf("http://%s:%d/", p.vip, p.port) }
func (p *pair) address() string { return p.vip }

func (p *pair) nodeDir(i int) string { return filepath.Join(p.dir, p.nodes[i]) }

func (p *pair) haproxyConfig() string {
	return fmt.Sprintf(`global
    maxconn 2000
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind :%d
    default_backend web
backend web
    balance roundrobin
    server b1 %s:%d check inter 2s
    server b2 %s:%d check inter 2s
`, p.port, lab.BackendAddr(0), lab.BackendPort, lab.BackendAddr(1), lab.BackendPort)
}

func (p *pair) keepalivedConfig(i int) string {
	state, priority := "MASTER", 101
	if i == 1 {
		state, priority = "BACKUP", 100
	}
	var auth string
	if p.tuning.vrrpVersion == 2 {
		auth = "    authentication {\n        auth_type PASS\n        auth_pass bench\n    }\n"
	}
	return fmt.Sprintf(`global_defs {
    router_id pair%d-%s
    vrrp_version %d
    script_user root
}
vrrp_script chk_haproxy {
    script "%s"
    interval %d
    weight 2
}
vrrp_instance pair%d {
    state %s
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int %s
%s    virtual_ipaddress {
        %s/%d dev eth0
    }
    track_script {
        chk_haproxy
    }
}
`, p.vrid, p.nodes[i], p.tuning.vrrpVersion, filepath.Join(p.nodeDir(i), "check.sh"), p.tuning.scriptInterval,
		p.vrid, state, p.vrid, priority, p.tuning.advert, auth, p.vip, lab.PrefixLen)
}

// start writes the files and starts HAProxy and keepalived on both nodes,
// then waits until node-a holds the VIP and it answers.
func (p *pair) start(ctx context.Context) error {
	for i := range p.nodes {
		dir := p.nodeDir(i)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		check := "#!/bin/sh\nkill -0 \"$(cat " + filepath.Join(dir, "haproxy.pid") + ")\" 2>/dev/null\n"
		// keepalived skips an executable config file.
		files := []struct {
			name, data string
			mode       os.FileMode
		}{{"haproxy.cfg", p.haproxyConfig(), 0o644}, {"keepalived.conf", p.keepalivedConfig(i), 0o644}, {"check.sh", check, 0o755}}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
				return err
			}
		}
		if err := p.startHAProxy(i); err != nil {
			return err
		}
		cmd, err := p.run(i, "keepalived.log", "keepalived", "--dont-fork", "--log-console", "--log-detail", "--vrrp",
			"-f", filepath.Join(dir, "keepalived.conf"),
			"-p", filepath.Join(dir, "keepalived.pid"), "-r", filepath.Join(dir, "vrrp.pid"))
		if err != nil {
			return err
		}
		p.keepalived[i] = cmd
	}
	return waitUntil(ctx, 60*time.Second, p.name()+" on node-a", func() bool {
		return p.l.HoldsVIP(p.nodes[0], p.vip) && !p.l.HoldsVIP(p.nodes[1], p.vip) && answers(p.l, p.url())
	})
}

func (p *pair) startHAProxy(i int) error {
	dir := p.nodeDir(i)
	cmd, err := p.run(i, "haproxy.log", "haproxy", "-W", "-db", "-f", filepath.Join(dir, "haproxy.cfg"))
	if err != nil {
		return err
	}
	p.haproxy[i] = cmd
	// nsenter execs HAProxy in place: the pid is HAProxy's master.
	return os.WriteFile(filepath.Join(dir, "haproxy.pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644)
}

// run starts a program in node i's network namespace, in its own process
// group (killed whole, as the bench's fault or its cleanup), logging to a
// file in the node's directory.
func (p *pair) run(i int, logName string, argv ...string) (*exec.Cmd, error) {
	cmd, err := p.l.NodeCommand(context.Background(), p.nodes[i], argv...)
	if err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(p.nodeDir(i), logName))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	// No Pdeathsig: it fires when the forking OS thread ends, and the
	// lab's dialers end threads they lock into a namespace. The lab's
	// Close kills whatever still runs in its namespaces.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	go func() { _ = cmd.Wait(); log.Close() }()
	return cmd, nil
}

// killHAProxy kills HAProxy's master and workers on node-a at once.
func (p *pair) killHAProxy(context.Context) error {
	return syscall.Kill(-p.haproxy[0].Process.Pid, syscall.SIGKILL)
}

// restoreHAProxy starts HAProxy on node-a again and waits until the check
// script passes and node-a has taken the VIP back (it preempts).
func (p *pair) restoreHAProxy(ctx context.Context) error {
	if err := p.startHAProxy(0); err != nil {
		return err
	}
	return p.waitBack(ctx)
}

func (p *pair) waitBack(ctx context.Context) error {
	return waitUntil(ctx, 60*time.Second, p.name()+" back on node-a", func() bool {
		return p.l.HoldsVIP(p.nodes[0], p.vip) && !p.l.HoldsVIP(p.nodes[1], p.vip) && answers(p.l, p.url())
	})
}

// stop ends both nodes' processes: keepalived first, with SIGTERM, so it
// removes its VIP, then whatever is left.
func (p *pair) stop() {
	for _, cmds := range [][2]*exec.Cmd{p.keepalived, p.haproxy} {
		for _, cmd := range cmds {
			if cmd != nil && cmd.Process != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			}
		}
	}
	time.Sleep(time.Second)
	for _, cmds := range [][2]*exec.Cmd{p.keepalived, p.haproxy} {
		for _, cmd := range cmds {
			if cmd != nil && cmd.Process != nil {
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
		}
	}
}

// logTail is the end of a pair's logs on a node, for a failure.
func (p *pair) logTail(i int) string {
	var out strings.Builder
	for _, name := range []string{"keepalived.log", "haproxy.log"} {
		data, _ := os.ReadFile(filepath.Join(p.nodeDir(i), name))
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&out, "--- %s %s\n%s", p.nodes[i], name, data)
	}
	return out.String()
}
