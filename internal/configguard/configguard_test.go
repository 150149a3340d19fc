package configguard

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// goldenDir holds the renderer's golden files; every one must pass.
var goldenDir = filepath.Join("..", "render", "testdata")

// TestGoldensPass runs every golden file the renderer's tests keep through
// the guard: an allowlist that lags behind the templates fails here.
func TestGoldensPass(t *testing.T) {
	runDir := contract.DefaultPaths().RunDir
	counts := map[string]int{}
	err := filepath.WalkDir(goldenDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".golden") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		switch name := d.Name(); {
		case name == contract.HAProxyConfigFile+".golden":
			counts["haproxy"]++
			if err := HAProxy(string(data), runDir); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		case strings.HasSuffix(name, contract.KeepalivedConfigFile+".golden"):
			counts["keepalived"]++
			if err := Keepalived(string(data), runDir); err != nil {
				t.Errorf("%s: %v", path, err)
			}
		default:
			t.Errorf("%s: a golden file of a kind this test does not know; teach it", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts["haproxy"] == 0 || counts["keepalived"] == 0 {
		t.Fatalf("found %d haproxy.cfg and %d keepalived.conf goldens under %s, want some of each", counts["haproxy"], counts["keepalived"], goldenDir)
	}
	t.Logf("checked %d haproxy.cfg and %d keepalived.conf goldens", counts["haproxy"], counts["keepalived"])
}

// baseHAProxy and baseKeepalived are what the renderer prints (with
// DefaultPaths), trimmed; the refusal cases edit them.
const baseHAProxy = `# Rendered by hakeeper.
global
    master-worker
    log stdout format raw local0 info
    maxconn 20000
    nbthread 2
    hard-stop-after 300s
    # The runtime API listens on a unix socket only, never on the network.
    stats socket /var/run/hakeeper/haproxy/haproxy.sock mode 600 level admin expose-fd listeners
    stats timeout 30s
    server-state-file /var/run/hakeeper/haproxy/haproxy.state
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets

defaults
    log global
    option dontlognull
    load-server-state-from-file global
    timeout connect 5000ms
    timeout client 50s
    default-server init-addr last,libc,none

frontend fe_https
    mode http
    bind 198.18.0.120:443 transparent accept-proxy ssl crt /var/run/hakeeper/tls/https.pem ssl-min-ver TLSv1.2 alpn h2,http/1.1
    bind [2001:db8::120]:443 transparent ssl crt /var/run/hakeeper/tls/https.pem ssl-min-ver TLSv1.2 alpn h2,http/1.1
    maxconn 5000
    option httplog
    option forwardfor
    option idle-close-on-response
    http-request set-header X-Forwarded-Proto https
    use_backend be_shop if { req.hdr(host),field(1,:) -i -m end .example.com } { path_beg /shop }
    default_backend be_web

backend be_web
    mode http
    balance hdr(X-Customer)
    hash-type consistent
    cookie SRV insert indirect nocache httponly
    option httpchk
    http-check send meth GET uri /healthz ver HTTP/1.1 hdr Host api.example.com
    http-check expect status 200
    timeout check 500ms
    default-server check inter 1000ms rise 2 fall 2 port 8081
    server vm1 198.18.0.21:8080 weight 100 cookie vm1
    server ep_1 [2001:db8::63]:8080 weight 100 backup cookie ep_1
    server ep_2 0.0.0.0:1 weight 100 cookie ep_2 disabled
    server pg pg-standby.db.example.internal:5432 weight 100 backup

backend be_pg
    mode tcp
    balance leastconn
    option tcplog
`

const baseKeepalived = `# Rendered by hakeeper.
global_defs {
    router_id edge-a
    vrrp_version 3
    # The agent reads state changes here and reports the node's role.
    notify_fifo /var/run/hakeeper/keepalived/keepalived.fifo
}

vrrp_track_file haproxy {
    file /var/run/hakeeper/health/haproxy.health
    init_file 1
}

vrrp_track_file preempt_hold {
    file /var/run/hakeeper/keepalived/preempt.hold
    init_file 1 overwrite
}

vrrp_instance hk_default_website {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 0.05
    garp_master_delay 1
    nopreempt
    unicast_src_ip 198.18.0.11
    unicast_peer {
        198.18.0.12
    }
    virtual_ipaddress {
        198.18.0.100/24 dev eth0
    }
    virtual_ipaddress_excluded {
        2001:db8::120/64 dev eth0
    }
    track_file {
        haproxy weight 0
        preempt_hold weight -253
    }
}
`

// edit changes base: after inserts text after the line anchor (a whole
// line, without its newline); with replace, text replaces that line.
type edit struct {
	anchor  string
	text    string
	replace bool
}

func (e edit) apply(t *testing.T, base string) string {
	t.Helper()
	if e.anchor == "" {
		return base + e.text
	}
	lines := strings.SplitAfter(base, "\n")
	for i, l := range lines {
		if strings.TrimSuffix(l, "\n") != e.anchor {
			continue
		}
		if e.replace {
			lines[i] = e.text
		} else {
			lines[i] = l + e.text
		}
		return strings.Join(lines, "")
	}
	t.Fatalf("no line %q in the base config", e.anchor)
	return ""
}

func TestBasesPass(t *testing.T) {
	if err := HAProxy(baseHAProxy, ""); err != nil {
		t.Error(err)
	}
	if err := HAProxy(baseHAProxy, "/var/run/hakeeper/"); err != nil {
		t.Errorf("a trailing slash on the run directory: %v", err)
	}
	if err := Keepalived(baseKeepalived, ""); err != nil {
		t.Error(err)
	}
}

func TestHAProxyRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit edit
		want string // in the error
	}{
		{"program section", edit{text: "\nprogram evil\n    command /bin/sh -c id\n"},
			`haproxy.cfg line 54: "program" is not something hakeeper renders`},
		{"lua-load", edit{anchor: "global", text: "    lua-load /tmp/x.lua\n"},
			`haproxy.cfg line 3: "lua-load" is not something hakeeper renders`},
		{"lua-load-per-thread", edit{anchor: "global", text: "    lua-load-per-thread /tmp/x.lua\n"}, `"lua-load-per-thread"`},
		{"lua-prepend-path", edit{anchor: "global", text: "    lua-prepend-path /tmp/?.lua\n"}, `"lua-prepend-path"`},
		{"external-check", edit{anchor: "global", text: "    external-check\n"}, `"external-check"`},
		{"external-check command and option", edit{anchor: "backend be_pg", text: "    option external-check\n    external-check command /bin/sh\n"},
			`"option external-check" is not something hakeeper renders`},
		{"external-check command", edit{anchor: "backend be_pg", text: "    external-check command /bin/sh\n"}, `"external-check"`},
		{"insecure-fork-wanted", edit{anchor: "global", text: "    insecure-fork-wanted\n"}, `"insecure-fork-wanted"`},
		{"setenv", edit{anchor: "global", text: "    setenv LUA_PATH /tmp\n"}, `"setenv"`},
		{"presetenv", edit{anchor: "global", text: "    presetenv LUA_PATH /tmp\n"}, `"presetenv"`},
		{"http-request lua action", edit{anchor: "frontend fe_https", text: "    http-request lua.evil\n"}, `"http-request lua.evil"`},
		{"http-request use-service", edit{anchor: "frontend fe_https", text: "    http-request use-service lua.evil\n"}, `"http-request use-service lua.evil"`},
		{"tcp-request lua action", edit{anchor: "frontend fe_https", text: "    tcp-request content lua.evil\n"}, `"tcp-request content lua.evil" is not what hakeeper renders`},
		{"tcp-request beyond the source filter", edit{anchor: "frontend fe_https", text: "    tcp-request connection reject if !{ src 10.0.0.0/8 } || { lua.evil }\n"},
			`"tcp-request }" is not a network`},
		{"tcp-request accept", edit{anchor: "frontend fe_https", text: "    tcp-request connection accept\n"}, `is not what hakeeper renders (only the source-range filter)`},
		{"tcp-request source filter on a name", edit{anchor: "frontend fe_https", text: "    tcp-request connection reject if !{ src evil }\n"}, `"tcp-request evil" is not a network`},
		{"stats socket elsewhere", edit{anchor: "    stats socket /var/run/hakeeper/haproxy/haproxy.sock mode 600 level admin expose-fd listeners",
			text: "    stats socket /tmp/admin.sock mode 666 level admin\n", replace: true}, `"stats socket /tmp/admin.sock" is not a socket hakeeper renders (want /var/run/hakeeper/haproxy/haproxy.sock)`},
		{"stats socket on the network", edit{anchor: "global", text: "    stats socket ipv4@0.0.0.0:9999 level admin\n"}, `"stats socket ipv4@0.0.0.0:9999"`},
		{"stats socket option", edit{anchor: "global", text: "    stats socket /var/run/hakeeper/haproxy/haproxy.sock user nobody\n"}, `"stats socket /var/run/hakeeper/haproxy/haproxy.sock user"`},
		{"stats page", edit{anchor: "frontend fe_https", text: "    stats enable\n"}, `"stats enable"`},
		{"server-state-file elsewhere", edit{anchor: "global", text: "    server-state-file /etc/shadow\n"}, `"server-state-file /etc/shadow" is not a path`},
		{"load-server-state-from-file local", edit{anchor: "defaults", text: "    load-server-state-from-file local\n"}, `"load-server-state-from-file local"`},
		{"log to the network", edit{anchor: "global", text: "    log 203.0.113.9:514 local0\n"}, `"log 203.0.113.9:514"`},
		{"mode log", edit{anchor: "backend be_pg", text: "    mode log\n"}, `"mode log"`},
		{"no option", edit{anchor: "backend be_pg", text: "    no option tcplog\n"}, `"no option"`},
		{"metrics socket mode", edit{anchor: "frontend fe_https", text: "    bind /var/run/hakeeper/haproxy/haproxy-metrics.sock mode 666\n"},
			`"bind /var/run/hakeeper/haproxy/haproxy-metrics.sock mode 666" is not how hakeeper binds the metrics socket`},
		{"metrics socket elsewhere", edit{anchor: "frontend fe_https", text: "    bind /tmp/haproxy-metrics.sock mode 600\n"}, `"bind /tmp/haproxy-metrics.sock mode 600"`},
		{"use-service other", edit{anchor: "frontend fe_https", text: "    http-request use-service prometheus-exporter if TRUE\n"}, `"http-request use-service prometheus-exporter if TRUE"`},
		{"conditional block", edit{anchor: "global", text: ".if defined(X)\n.endif\n"}, `".if"`},
		{"user", edit{anchor: "global", text: "    user root\n"}, `"user"`},
		{"chroot elsewhere", edit{anchor: "global", text: "    chroot /\n"}, `"chroot /" is not a path hakeeper renders`},
		{"workers as root", edit{anchor: "global", text: "    uid 0\n"}, `"uid 0" is not what hakeeper renders (want 64535)`},
		{"workers in group root", edit{anchor: "global", text: "    gid 0\n"}, `"gid 0" is not what hakeeper renders`},
		{"crt-base", edit{anchor: "global", text: "    crt-base /etc/ssl/private\n"}, `"crt-base"`},
		{"bind a unix socket", edit{anchor: "frontend fe_https", text: "    bind /var/run/docker.sock\n"}, `"bind /var/run/docker.sock"`},
		{"bind an fd", edit{anchor: "frontend fe_https", text: "    bind fd@3\n"}, `"bind fd@3"`},
		{"bind namespace", edit{anchor: "frontend fe_https", text: "    bind 0.0.0.0:81 namespace host\n"}, `"bind 0.0.0.0:81 namespace"`},
		{"bind crt elsewhere", edit{anchor: "frontend fe_https", text: "    bind 0.0.0.0:444 ssl crt /etc/ssl/private/host.pem\n"}, `"bind 0.0.0.0:444 crt /etc/ssl/private/host.pem"`},
		{"bind crt escaping", edit{anchor: "frontend fe_https", text: "    bind 0.0.0.0:444 ssl crt /var/run/hakeeper/tls/../../../etc/x.pem\n"}, `crt /var/run/hakeeper/tls/../../../etc/x.pem`},
		{"bind crt-list", edit{anchor: "frontend fe_https", text: "    bind 0.0.0.0:444 ssl crt-list /tmp/list\n"}, `"bind 0.0.0.0:444 crt-list"`},
		{"bind option without value", edit{anchor: "frontend fe_https", text: "    bind 0.0.0.0:444 ssl crt\n"}, `"bind 0.0.0.0:444 crt (no value)"`},
		{"server on a unix socket", edit{anchor: "backend be_pg", text: "    server s unix@/var/run/docker.sock\n"}, `"server s unix@/var/run/docker.sock"`},
		{"server on a path", edit{anchor: "backend be_pg", text: "    server s /var/run/docker.sock\n"}, `"server s /var/run/docker.sock"`},
		{"server namespace", edit{anchor: "backend be_pg", text: "    server s 10.0.0.1:80 namespace host\n"}, `"server s 10.0.0.1:80 namespace"`},
		{"server agent-check", edit{anchor: "backend be_pg", text: "    server s 10.0.0.1:80 agent-check agent-port 9\n"}, `"server s 10.0.0.1:80 agent-check"`},
		{"default-server ssl", edit{anchor: "backend be_pg", text: "    default-server ssl crt /etc/x.pem\n"}, `"default-server ssl"`},
		{"monitor-uri elsewhere", edit{anchor: "frontend fe_https", text: "    monitor-uri /admin\n"}, `"monitor-uri /admin"`},
		{"http-check connect", edit{anchor: "backend be_pg", text: "    http-check connect addr 127.0.0.1:22\n"}, `"http-check connect"`},
		{"sections", edit{text: "\nlisten stats\n    bind 0.0.0.0:9000\n"}, `"listen"`},
		{"userlist", edit{text: "\nuserlist admins\n    user a insecure-password b\n"}, `"userlist"`},
		{"peers", edit{text: "\npeers p\n    peer a 10.0.0.1:1024\n"}, `"peers"`},
		{"resolvers", edit{text: "\nresolvers r\n    nameserver a 10.0.0.1:53\n"}, `"resolvers"`},
		{"mailers", edit{text: "\nmailers m\n"}, `"mailers"`},
		{"cache", edit{text: "\ncache c\n"}, `"cache"`},
		{"ring", edit{text: "\nring r\n"}, `"ring"`},
		{"http-errors", edit{text: "\nhttp-errors e\n    errorfile 503 /etc/shadow\n"}, `"http-errors"`},
		{"errorfile", edit{anchor: "defaults", text: "    errorfile 503 /etc/shadow\n"}, `"errorfile"`},
		{"quoted keyword", edit{anchor: "global", text: "    \"lua-load\" /tmp/x.lua\n"}, `"\"lua-load\""`},
		{"escaped keyword", edit{anchor: "global", text: "    lua\\-load /tmp/x.lua\n"}, `"lua\\-load"`},
		{"quoted argument", edit{anchor: "frontend fe_https", text: "    http-request set-header X \"${HOME}\"\n"}, `carries '"'`},
		{"variable", edit{anchor: "backend be_pg", text: "    timeout check $T\n"}, `carries '$'`},
		{"trailing comment", edit{anchor: "backend be_pg", text: "    timeout check 1s # lua-load x\n"}, `carries '#'`},
		{"carriage return", edit{anchor: "global", text: "    # comment\r    lua-load /tmp/x.lua\n"}, `"\r" is a byte hakeeper never renders`},
		{"NUL", edit{anchor: "global", text: "    maxconn 1\x00\n"}, `"\x00" is a byte`},
		{"non-ASCII", edit{anchor: "global", text: "    maxconn １\n"}, `is a byte hakeeper never renders`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.edit.apply(t, baseHAProxy)
			err := HAProxy(cfg, "")
			if err == nil {
				t.Fatalf("accepted:\n%s", cfg)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestKeepalivedRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit edit
		want string // in the error
	}{
		{"vrrp_script", edit{text: "vrrp_script chk { script \"/bin/sh -c id\" }\n"},
			`keepalived.conf line 42: "vrrp_script" is not something hakeeper renders`},
		{"vrrp_script block", edit{anchor: "}", text: "vrrp_script chk {\n    script /bin/true\n}\n"}, `"vrrp_script"`},
		{"track_script", edit{anchor: "    garp_master_delay 1", text: "    track_script {\n        chk\n    }\n"},
			`"track_script" is not something hakeeper renders in vrrp_instance`},
		{"notify", edit{anchor: "    garp_master_delay 1", text: "    notify \"/bin/sh\"\n"},
			`keepalived.conf line 26: "notify" is not something hakeeper renders in vrrp_instance`},
		{"notify_master", edit{anchor: "    garp_master_delay 1", text: "    notify_master /bin/x\n"}, `"notify_master"`},
		{"notify_backup", edit{anchor: "    garp_master_delay 1", text: "    notify_backup /bin/x\n"}, `"notify_backup"`},
		{"notify_fault", edit{anchor: "    garp_master_delay 1", text: "    notify_fault /bin/x\n"}, `"notify_fault"`},
		{"notify_stop", edit{anchor: "    garp_master_delay 1", text: "    notify_stop /bin/x\n"}, `"notify_stop"`},
		{"notify_fifo_script", edit{anchor: "    vrrp_version 3", text: "    notify_fifo_script /bin/x\n"}, `"notify_fifo_script" is not something hakeeper renders in global_defs`},
		{"vrrp_notify_fifo_script", edit{anchor: "    vrrp_version 3", text: "    vrrp_notify_fifo_script /bin/x\n"}, `"vrrp_notify_fifo_script"`},
		{"script_user", edit{anchor: "    vrrp_version 3", text: "    script_user root\n"}, `"script_user"`},
		{"multicast group not multicast", edit{anchor: "    vrrp_version 3", text: "    vrrp_mcast_group4 198.18.0.1\n"}, `"vrrp_mcast_group4 198.18.0.1" is not a value hakeeper renders`},
		{"multicast group of the other family", edit{anchor: "    vrrp_version 3", text: "    vrrp_mcast_group6 239.255.18.7\n"}, `"vrrp_mcast_group6 239.255.18.7" is not a value`},
		{"enable_script_security", edit{anchor: "    vrrp_version 3", text: "    enable_script_security\n"}, `"enable_script_security"`},
		{"include", edit{text: "include /etc/x\n"}, `keepalived.conf line 42: "include" is not something hakeeper renders`},
		{"include inside a block", edit{anchor: "    vrrp_version 3", text: "    include /etc/x\n"}, `"include"`},
		{"notify_fifo elsewhere", edit{anchor: "    notify_fifo /var/run/hakeeper/keepalived/keepalived.fifo", text: "    notify_fifo /tmp/evil.fifo\n", replace: true},
			`keepalived.conf line 6: "notify_fifo /tmp/evil.fifo" is not a path hakeeper renders (want /var/run/hakeeper/keepalived/keepalived.fifo)`},
		{"notify_fifo escaping the run dir", edit{anchor: "    notify_fifo /var/run/hakeeper/keepalived/keepalived.fifo", text: "    notify_fifo /var/run/hakeeper/../../../tmp/keepalived.fifo\n", replace: true}, `"notify_fifo /var/run/hakeeper/../../../tmp/keepalived.fifo"`},
		{"notify_fifo with a script", edit{anchor: "    notify_fifo /var/run/hakeeper/keepalived/keepalived.fifo", text: "    notify_fifo /var/run/hakeeper/keepalived/keepalived.fifo /bin/sh\n", replace: true}, `has arguments hakeeper does not render`},
		{"tracked file elsewhere", edit{anchor: "    file /var/run/hakeeper/health/haproxy.health", text: "    file /etc/shadow\n", replace: true}, `"file /etc/shadow" is not a path`},
		{"pid file", edit{anchor: "    vrrp_version 3", text: "    pid_file /etc/passwd\n"}, `"pid_file"`},
		{"virtual_server", edit{text: "virtual_server 10.0.0.1 80 {\n    real_server 10.0.0.2 80 {\n        MISC_CHECK {\n            misc_path /bin/sh\n        }\n    }\n}\n"}, `"virtual_server"`},
		{"vrrp_sync_group", edit{text: "vrrp_sync_group g {\n    group {\n        hk_default_website\n    }\n}\n"}, `"vrrp_sync_group"`},
		{"variable definition", edit{text: "$EVIL=include /etc/x\n"}, `"$EVIL=include"`},
		{"variable use", edit{anchor: "    vrrp_version 3", text: "    router_id $EVIL\n"}, `carries '$'`},
		{"conditional line", edit{text: "@edge-a include /etc/x\n"}, `"@edge-a"`},
		{"sequence", edit{text: "~SEQ(i,1,2) include /etc/x\n"}, `"~SEQ(i,1,2)"`},
		{"trailing comment", edit{anchor: "    vrrp_version 3", text: "    router_id a # b\n"}, `carries '#'`},
		{"trailing bang comment", edit{anchor: "    vrrp_version 3", text: "    router_id a ! b\n"}, `carries '!'`},
		{"glued brace", edit{anchor: "    vrrp_version 3", text: "    router_id a}\n"}, `"router_id a}" has arguments`},
		{"block on one line", edit{anchor: "    nopreempt", text: "    track_file { haproxy weight 0 }\n"}, `"track_file { haproxy weight 0 }" does not open its block`},
		{"stray closing brace", edit{text: "}\n"}, `"}" closes no block`},
		{"unclosed block", edit{text: "vrrp_instance x {\n"}, `keepalived.conf line 42: "vrrp_instance" is never closed`},
		{"virtual address option", edit{anchor: "        198.18.0.100/24 dev eth0", text: "        198.18.0.101/24 dev eth0 label eth0:evil\n"}, `"198.18.0.101/24 dev eth0 label eth0:evil" is not something hakeeper renders in virtual_ipaddress`},
		{"virtual route", edit{anchor: "        198.18.0.100/24 dev eth0", text: "        0.0.0.0/0 via 10.0.0.1\n"}, `"0.0.0.0/0 via 10.0.0.1"`},
		{"unicast peer option", edit{anchor: "        198.18.0.12", text: "        198.18.0.13 min_ttl 1\n"}, `"198.18.0.13 min_ttl 1" is not something hakeeper renders in unicast_peer`},
		{"unicast peer not an address", edit{anchor: "        198.18.0.12", text: "        include\n"}, `"include" is not something hakeeper renders in unicast_peer`},
		{"track_file option", edit{anchor: "        haproxy weight 0", text: "        other weight 0 reverse\n"}, `in track_file`},
		{"long comment", edit{anchor: "    vrrp_version 3", text: "#" + strings.Repeat("a", 1019) + " include /etc/x\n"}, `is longer than 1000 bytes`},
		{"carriage return", edit{anchor: "    vrrp_version 3", text: "    # x\rinclude /etc/x\n"}, `"\r" is a byte`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := tc.edit.apply(t, baseKeepalived)
			err := Keepalived(conf, "")
			if err == nil {
				t.Fatalf("accepted:\n%s", conf)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestOtherRunDir: paths must be under the run directory the agent uses,
// not under the default one.
func TestOtherRunDir(t *testing.T) {
	if err := HAProxy(baseHAProxy, "/run/elsewhere"); err == nil || !strings.Contains(err.Error(), "/run/elsewhere/haproxy/haproxy.sock") {
		t.Errorf("HAProxy: got %v, want a refusal naming /run/elsewhere/haproxy/haproxy.sock", err)
	}
	if err := Keepalived(baseKeepalived, "/run/elsewhere"); err == nil || !strings.Contains(err.Error(), "/run/elsewhere/keepalived/keepalived.fifo") {
		t.Errorf("Keepalived: got %v, want a refusal naming /run/elsewhere/keepalived/keepalived.fifo", err)
	}
	moved := strings.ReplaceAll(baseHAProxy, "/var/run/hakeeper/", "/run/elsewhere/")
	if err := HAProxy(moved, "/run/elsewhere"); err != nil {
		t.Error(err)
	}
	moved = strings.ReplaceAll(baseKeepalived, "/var/run/hakeeper/", "/run/elsewhere/")
	if err := Keepalived(moved, "/run/elsewhere"); err != nil {
		t.Error(err)
	}
}
