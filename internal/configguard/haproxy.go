package configguard

import (
	"net/netip"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// HAProxy checks a haproxy.cfg. runDir is the run directory the agent
// shares with HAProxy (contract.Paths.RunDir; empty means
// contract.DefaultPaths): the runtime socket, the server state file and the
// certificates the config names must be the renderer's paths under it.
func HAProxy(cfg, runDir string) error {
	const file = contract.HAProxyConfigFile
	p := pathsFor(runDir)
	lines, err := directives(file, cfg, "#", 0)
	if err != nil {
		return err
	}
	for _, l := range lines {
		keyword := l.words[0]
		rule, ok := haproxyKeywords[keyword]
		if !ok {
			return &refusal{file: file, line: l.n, what: keyword}
		}
		if err := checkCharacters(file, l, `"'\$#`); err != nil {
			return err
		}
		if rule != nil {
			if what, why := rule(l.words[1:], p); what != "" {
				return &refusal{file: file, line: l.n, what: keyword + " " + what, why: why}
			}
		}
	}
	return nil
}

// haproxyRule checks a directive's arguments. It returns the words it
// refuses (empty: none) and, optionally, why.
type haproxyRule func(args []string, p contract.Paths) (what, why string)

// haproxyKeywords is every keyword templates/haproxy.cfg.tmpl prints, with
// the rule for its arguments (nil: any argument is harmless: numbers,
// names, ACL conditions).
var haproxyKeywords = map[string]haproxyRule{
	// Sections. No listen, program, userlist, peers, resolvers, mailers,
	// cache, ring, http-errors, ...
	"global":   nil,
	"defaults": nil,
	"frontend": nil,
	"backend":  nil,

	// global
	"master-worker":            nil,
	"uid":                      exactly(strconv.Itoa(contract.HAProxyWorkerUID)),
	"gid":                      exactly(strconv.Itoa(contract.HAProxyWorkerGID)),
	"chroot":                   exactPath(func(contract.Paths) string { return contract.HAProxyChroot }),
	"log":                      firstOf("stdout", "global"),
	"maxconn":                  nil,
	"nbthread":                 nil,
	"hard-stop-after":          nil,
	"stats":                    stats,
	"server-state-file":        exactPath(func(p contract.Paths) string { return p.ServerState() }),
	"ssl-default-bind-options": nil,

	// defaults
	"option":                      firstOf("dontlognull", "httplog", "forwardfor", "idle-close-on-response", "tcplog", "httpchk"),
	"load-server-state-from-file": firstOf("global"),
	"timeout":                     nil,
	"default-server":              serverOptions,

	// frontend
	"mode":            firstOf("http", "tcp"),
	"bind":            bind,
	"http-request":    httpRequest,
	"no":              firstOf("log"),
	"use_backend":     nil,
	"default_backend": nil,
	"tcp-request":     sourceFilter,
	"monitor-uri":     exactly(contract.HAProxyMonitorPath),

	// backend
	"balance":    nil,
	"hash-type":  nil,
	"cookie":     nil,
	"http-check": firstOf("send", "expect"),
	"server":     server,
}

// sourceFilter allows only the listener's allowed source ranges:
// `tcp-request connection|session reject if !{ src NET... }`. Any other
// tcp-request could call a Lua action or change what is logged.
func sourceFilter(args []string, _ contract.Paths) (string, string) {
	n := len(args)
	if n < 7 || (args[0] != "connection" && args[0] != "session") || args[1] != "reject" || args[2] != "if" ||
		args[3] != "!{" || args[4] != "src" || args[n-1] != "}" {
		return strings.Join(args, " "), "is not what hakeeper renders (only the source-range filter)"
	}
	for _, a := range args[5 : n-1] {
		if _, err := netip.ParsePrefix(a); err != nil {
			return a, "is not a network"
		}
	}
	return "", ""
}

// firstOf allows the directive only with one of these first arguments.
func firstOf(allowed ...string) haproxyRule {
	return func(args []string, _ contract.Paths) (string, string) {
		if len(args) == 0 {
			return "(nothing)", ""
		}
		if !slices.Contains(allowed, args[0]) {
			return args[0], ""
		}
		return "", ""
	}
}

// exactly allows the directive with this one argument: the workers' user
// and group, which a config must not raise to root.
func exactly(want string) haproxyRule {
	return func(args []string, _ contract.Paths) (string, string) {
		if len(args) != 1 || args[0] != want {
			return strings.Join(args, " "), "is not what hakeeper renders (want " + want + ")"
		}
		return "", ""
	}
}

func exactPath(want func(contract.Paths) string) haproxyRule {
	return func(args []string, p contract.Paths) (string, string) {
		if len(args) != 1 || args[0] != want(p) {
			return strings.Join(args, " "), "is not a path hakeeper renders (want " + want(p) + ")"
		}
		return "", ""
	}
}

// stats allows `stats timeout` and the runtime API socket at its path.
func stats(args []string, p contract.Paths) (string, string) {
	switch {
	case len(args) == 2 && args[0] == "timeout":
		return "", ""
	case len(args) >= 2 && args[0] == "socket":
		if args[1] != p.RuntimeSocket() {
			return "socket " + args[1], "is not a socket hakeeper renders (want " + p.RuntimeSocket() + ")"
		}
		if what := options(args[2:], map[string]int{"mode": 1, "level": 1, "expose-fd": 1}, nil); what != "" {
			return "socket " + args[1] + " " + what, ""
		}
		return "", ""
	case len(args) == 0:
		return "(nothing)", ""
	}
	return args[0], ""
}

// options checks "name [value]" options against their arities; check, if
// set, vets each option's value. It returns the first words refused.
func options(args []string, arity map[string]int, check func(name, value string) bool) string {
	for i := 0; i < len(args); i++ {
		n, ok := arity[args[i]]
		if !ok {
			return args[i]
		}
		if i+n >= len(args) {
			return args[i] + " (no value)"
		}
		if n == 1 && check != nil && !check(args[i], args[i+1]) {
			return args[i] + " " + args[i+1]
		}
		i += n
	}
	return ""
}

// address allows IP:port and name:port, not a path, a unix or abstract
// socket, a file descriptor or any other "prefix@" address.
func address(s string) bool {
	return s != "" && !strings.HasPrefix(s, "/") && !strings.Contains(s, "@")
}

// httpRequest allows the header rules listeners use and the one service
// the metrics frontend uses.
func httpRequest(args []string, _ contract.Paths) (string, string) {
	switch {
	case len(args) == 0:
		return "(nothing)", ""
	case args[0] == "set-header" || args[0] == "del-header":
		return "", ""
	case args[0] == "use-service" && len(args) == 2 && args[1] == "prometheus-exporter":
		return "", ""
	}
	return strings.Join(args, " "), ""
}

// bind allows the renderer's bind options; crt must be a listener's
// certificate in the run directory's TLS directory. The one socket path
// allowed is the metrics exporter's, private to the pod.
func bind(args []string, p contract.Paths) (string, string) {
	if len(args) > 0 && args[0] == p.MetricsSocket() {
		if len(args) != 3 || args[1] != "mode" || args[2] != "600" {
			return strings.Join(args, " "), "is not how hakeeper binds the metrics socket (want mode 600)"
		}
		return "", ""
	}
	if len(args) == 0 || !address(args[0]) {
		return strings.Join(args, " "), "is not an address hakeeper renders"
	}
	tlsDir := path.Dir(p.CertificateFile("x"))
	certificate := func(name, value string) bool {
		return name != "crt" || (path.Clean(value) == value && path.Dir(value) == tlsDir && strings.HasSuffix(value, ".pem"))
	}
	arity := map[string]int{"transparent": 0, "accept-proxy": 0, "ssl": 0, "crt": 1, "ssl-min-ver": 1, "alpn": 1}
	if what := options(args[1:], arity, certificate); what != "" {
		return args[0] + " " + what, ""
	}
	return "", ""
}

// serverArity holds the options of server and default-server lines.
var serverArity = map[string]int{
	"weight": 1, "backup": 0, "cookie": 1, "disabled": 0,
	"check": 0, "inter": 1, "rise": 1, "fall": 1, "port": 1, "init-addr": 1,
	"send-proxy": 0, "send-proxy-v2": 0, "check-send-proxy": 0,
}

func serverOptions(args []string, _ contract.Paths) (string, string) {
	return options(args, serverArity, nil), ""
}

func server(args []string, _ contract.Paths) (string, string) {
	if len(args) < 2 || !address(args[1]) {
		return strings.Join(args, " "), "is not a server hakeeper renders"
	}
	if what := options(args[2:], serverArity, nil); what != "" {
		return args[0] + " " + args[1] + " " + what, ""
	}
	return "", ""
}
