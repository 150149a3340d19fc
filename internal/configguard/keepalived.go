package configguard

import (
	"net/netip"
	"slices"
	"strings"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// maxKeepalivedLine keeps every line whole for keepalived, which reads a
// line longer than about 1 KiB as two (measured with 2.2.7): the tail of a
// long comment would become a directive the guard never saw.
const maxKeepalivedLine = 1000

// Keepalived checks a keepalived.conf. runDir is the run directory the
// agent shares with Keepalived (contract.Paths.RunDir; empty means
// contract.DefaultPaths): the notify FIFO and tracked files the config names
// must be the renderer's paths under it.
func Keepalived(conf, runDir string) error {
	const file = contract.KeepalivedConfigFile
	p := pathsFor(runDir)
	lines, err := directives(file, conf, "#!", maxKeepalivedLine)
	if err != nil {
		return err
	}
	type open struct {
		block string
		line  int
	}
	stack := []open{{}}
	for _, l := range lines {
		cur := stack[len(stack)-1].block
		if len(l.words) == 1 && l.words[0] == "}" {
			if len(stack) == 1 {
				return &refusal{file: file, line: l.n, what: "}", why: "closes no block"}
			}
			stack = stack[:len(stack)-1]
			continue
		}
		b := keepalivedBlocks[cur]
		if b.entry != nil {
			if err := checkCharacters(file, l, `"'\$#!`); err != nil {
				return err
			}
			if slices.ContainsFunc(l.words, hasBrace) || !b.entry(l.words) {
				return &refusal{file: file, line: l.n, what: strings.Join(l.words, " "), why: "is not something hakeeper renders in " + cur}
			}
			continue
		}
		keyword := l.words[0]
		k, ok := b.keywords[keyword]
		if !ok {
			why := ""
			if cur != "" {
				why = "is not something hakeeper renders in " + cur
			}
			return &refusal{file: file, line: l.n, what: keyword, why: why}
		}
		if err := checkCharacters(file, l, `"'\$#!`); err != nil {
			return err
		}
		args := l.words[1:]
		if k.block != "" {
			if len(args) == 0 || args[len(args)-1] != "{" {
				return &refusal{file: file, line: l.n, what: strings.Join(l.words, " "), why: "does not open its block as hakeeper renders it"}
			}
			args = args[:len(args)-1]
		}
		if slices.ContainsFunc(args, hasBrace) || len(args) < k.min || len(args) > k.max {
			return &refusal{file: file, line: l.n, what: strings.Join(l.words, " "), why: "has arguments hakeeper does not render"}
		}
		if k.paths != nil {
			if want := k.paths(p); !slices.Contains(want, args[0]) {
				return &refusal{file: file, line: l.n, what: strings.Join(l.words, " "),
					why: "is not a path hakeeper renders (want " + strings.Join(want, " or ") + ")"}
			}
		}
		if k.value != nil && !k.value(args[0]) {
			return &refusal{file: file, line: l.n, what: strings.Join(l.words, " "), why: "is not a value hakeeper renders"}
		}
		if k.block != "" {
			stack = append(stack, open{block: k.block, line: l.n})
		}
	}
	if last := stack[len(stack)-1]; len(stack) > 1 {
		return &refusal{file: file, line: last.line, what: last.block, why: "is never closed"}
	}
	return nil
}

func hasBrace(word string) bool { return strings.ContainsAny(word, "{}") }

// keepalivedBlock is what one block may hold: directives, or entries (the
// lines of a list block, which have no keyword).
type keepalivedBlock struct {
	keywords map[string]keepalivedKeyword
	entry    func(words []string) bool
}

// keepalivedKeyword is one directive: its number of arguments (not
// counting the "{" of a block) and, if it opens a block, which one. paths,
// if set, lists the values its one argument may take.
type keepalivedKeyword struct {
	min, max int
	block    string
	paths    func(contract.Paths) []string
	// value, if set, checks the one argument.
	value func(string) bool
}

// multicastOf admits a multicast address of one family.
func multicastOf(ipv4 bool) func(string) bool {
	return func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && a.Is4() == ipv4 && a.IsMulticast() && a.Zone() == ""
	}
}

// keepalivedBlocks is every block and keyword
// templates/keepalived.conf.tmpl prints, keyed by the keyword that opens
// the block ("" is the top level). No vrrp_script, track_script,
// script_user, enable_script_security, notify*, include, virtual_server,
// vrrp_sync_group, ...
var keepalivedBlocks = map[string]keepalivedBlock{
	"": {keywords: map[string]keepalivedKeyword{
		"global_defs":     {block: "global_defs"},
		"vrrp_track_file": {min: 1, max: 1, block: "vrrp_track_file"},
		"vrrp_instance":   {min: 1, max: 1, block: "vrrp_instance"},
	}},
	"global_defs": {keywords: map[string]keepalivedKeyword{
		"router_id":    {min: 1, max: 1},
		"vrrp_version": {min: 1, max: 1},
		// Unicast adverts only from a configured peer.
		"vrrp_check_unicast_src": {},
		// The class's group for this LoadBalancer's adverts.
		"vrrp_mcast_group4": {min: 1, max: 1, value: multicastOf(true)},
		"vrrp_mcast_group6": {min: 1, max: 1, value: multicastOf(false)},
		"notify_fifo": {min: 1, max: 1, paths: func(p contract.Paths) []string {
			return []string{p.NotifyFIFO()}
		}},
	}},
	"vrrp_track_file": {keywords: map[string]keepalivedKeyword{
		"file": {min: 1, max: 1, paths: func(p contract.Paths) []string {
			return []string{p.TrackFile(), p.NoServers(), p.Maintenance(), p.PreemptHold()}
		}},
		"init_file": {min: 0, max: 2},
	}},
	"vrrp_instance": {keywords: map[string]keepalivedKeyword{
		"state":                      {min: 1, max: 1},
		"interface":                  {min: 1, max: 1},
		"virtual_router_id":          {min: 1, max: 1},
		"priority":                   {min: 1, max: 1},
		"advert_int":                 {min: 1, max: 1},
		"garp_master_delay":          {min: 1, max: 1},
		"skip_check_adv_addr":        {},
		"nopreempt":                  {},
		"unicast_src_ip":             {min: 1, max: 1},
		"unicast_peer":               {block: "unicast_peer"},
		"virtual_ipaddress":          {block: "virtual_ipaddress"},
		"virtual_ipaddress_excluded": {block: "virtual_ipaddress_excluded"},
		"track_file":                 {block: "track_file"},
	}},
	// An address per line.
	"unicast_peer": {entry: func(w []string) bool {
		_, err := netip.ParseAddr(w[0])
		return len(w) == 1 && err == nil
	}},
	// "ADDRESS[/BITS] [dev INTERFACE]"
	"virtual_ipaddress":          {entry: virtualAddress},
	"virtual_ipaddress_excluded": {entry: virtualAddress},
	// "NAME [weight N]"
	"track_file": {entry: func(w []string) bool {
		return len(w) == 1 || len(w) == 3 && w[1] == "weight"
	}},
}

func virtualAddress(w []string) bool {
	if len(w) != 1 && (len(w) != 3 || w[1] != "dev") {
		return false
	}
	if _, err := netip.ParsePrefix(w[0]); err == nil {
		return true
	}
	_, err := netip.ParseAddr(w[0])
	return err == nil
}
