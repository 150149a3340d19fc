package agent

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// serverLine is one `server` line of haproxy.cfg, as render prints it:
// server NAME ADDRESS weight W [backup] [cookie C] [disabled]
type serverLine struct {
	backend  string
	name     string
	address  string
	weight   string
	disabled bool
	rest     string // backup and cookie: a change needs a reload
}

// parsedConfig splits haproxy.cfg into its server lines and everything
// else ("the skeleton"). Two configs with the same skeleton and the same
// servers by name differ only in what the runtime API can change.
type parsedConfig struct {
	skeleton []string
	servers  []serverLine
}

func parseConfig(cfg string) parsedConfig {
	var p parsedConfig
	backend := ""
	for _, line := range strings.Split(cfg, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "backend" {
			backend = fields[1]
		}
		if len(fields) >= 5 && fields[0] == "server" && fields[3] == "weight" {
			s := serverLine{backend: backend, name: fields[1], address: fields[2], weight: fields[4]}
			var rest []string
			for _, f := range fields[5:] {
				if f == "disabled" {
					s.disabled = true
				} else {
					rest = append(rest, f)
				}
			}
			s.rest = strings.Join(rest, " ")
			p.servers = append(p.servers, s)
			// Keep the server's identity in the skeleton: adding or
			// removing a server needs a reload.
			p.skeleton = append(p.skeleton, "server "+backend+"/"+s.name+" "+s.rest)
			continue
		}
		p.skeleton = append(p.skeleton, line)
	}
	return p
}

// runtimeCommands returns the runtime API commands that turn a running
// HAProxy from oldCfg into newCfg, and false when the change needs a
// reload (anything but server addresses, weights and enabled state).
func runtimeCommands(oldCfg, newCfg string) ([]string, bool) {
	o, n := parseConfig(oldCfg), parseConfig(newCfg)
	if strings.Join(o.skeleton, "\n") != strings.Join(n.skeleton, "\n") {
		return nil, false
	}
	var cmds []string
	for i, ns := range n.servers {
		os := o.servers[i] // same skeleton: same servers in the same order
		id := ns.backend + "/" + ns.name
		if ns.address != os.address {
			host, port, ok := splitHostPort(ns.address)
			if !ok {
				return nil, false
			}
			cmds = append(cmds, fmt.Sprintf("set server %s addr %s port %s", id, host, port))
		}
		if ns.weight != os.weight {
			cmds = append(cmds, fmt.Sprintf("set server %s weight %s", id, ns.weight))
		}
		if ns.disabled != os.disabled {
			state := "ready"
			if ns.disabled {
				state = "maint"
			}
			cmds = append(cmds, fmt.Sprintf("set server %s state %s", id, state))
		}
	}
	return cmds, true
}

// splitHostPort splits "198.18.0.1:80" and "[2001:db8::1]:80". DNS names
// are not changed at run time.
func splitHostPort(addr string) (host, port string, ok bool) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return "", "", false
	}
	return ap.Addr().String(), strconv.Itoa(int(ap.Port())), true
}
