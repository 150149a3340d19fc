package contract

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
)

// ServerSet is haproxy.cfg's run-time changeable servers as data, so the
// agent changes them through HAProxy's runtime API without reading the
// config's text. The operator renders it with haproxy.cfg (KeyServers).
type ServerSet struct {
	// Skeleton is the hash of haproxy.cfg with every server given by IP
	// address rendered with a placeholder address, weight and state: two
	// configs with the same skeleton differ only in what the runtime API
	// can change.
	Skeleton string `json:"skeleton"`
	// Backends maps an HAProxy backend name to its servers given by IP
	// address (static ones and Service slots); a server given by DNS name
	// is part of the skeleton.
	Backends map[string][]Server `json:"backends"`
}

// Server is one server the runtime API can change.
type Server struct {
	Name     string `json:"name"`
	Address  string `json:"address"`
	Port     int32  `json:"port"`
	Weight   int32  `json:"weight"`
	Disabled bool   `json:"disabled,omitempty"`
}

var (
	backendNameRE = regexp.MustCompile(`^be_[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	serverNameRE  = regexp.MustCompile(`^[a-z0-9_]([-a-z0-9_]*[a-z0-9])?$`)
	skeletonRE    = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// Validate checks every value that reaches a runtime API command, so a
// ServerSet cannot carry a second command or a name HAProxy would read
// differently.
func (s ServerSet) Validate() error {
	if !skeletonRE.MatchString(s.Skeleton) {
		return fmt.Errorf("%s: skeleton %q is not a hash", KeyServers, s.Skeleton)
	}
	for backend, servers := range s.Backends {
		if !backendNameRE.MatchString(backend) {
			return fmt.Errorf("%s: backend %q is not a backend name", KeyServers, backend)
		}
		for _, sv := range servers {
			addr, err := netip.ParseAddr(sv.Address)
			switch {
			case !serverNameRE.MatchString(sv.Name) || len(sv.Name) > 63:
				return fmt.Errorf("%s: %s: server name %q is not a server name", KeyServers, backend, sv.Name)
			case err != nil || addr.Zone() != "":
				return fmt.Errorf("%s: %s/%s: address %q is not an IP address", KeyServers, backend, sv.Name, sv.Address)
			case sv.Port < 1 || sv.Port > 65535:
				return fmt.Errorf("%s: %s/%s: port %d", KeyServers, backend, sv.Name, sv.Port)
			case sv.Weight < 0 || sv.Weight > 256:
				return fmt.Errorf("%s: %s/%s: weight %d", KeyServers, backend, sv.Name, sv.Weight)
			}
		}
	}
	return nil
}

// RuntimeCommands returns the runtime API commands that turn a HAProxy
// running from the config described by old into the one described by new,
// and false when the change needs a reload: the skeletons differ (or one
// is unknown), or a server is not in both.
func RuntimeCommands(old, new ServerSet) ([]string, bool) {
	if old.Skeleton == "" || old.Skeleton != new.Skeleton {
		return nil, false
	}
	var cmds []string
	for _, backend := range slices.Sorted(maps.Keys(new.Backends)) {
		before := map[string]Server{}
		for _, s := range old.Backends[backend] {
			before[s.Name] = s
		}
		if len(before) != len(new.Backends[backend]) {
			return nil, false
		}
		for _, s := range new.Backends[backend] {
			o, ok := before[s.Name]
			if !ok {
				return nil, false
			}
			id := backend + "/" + s.Name
			if s.Address != o.Address || s.Port != o.Port {
				cmds = append(cmds, fmt.Sprintf("set server %s addr %s port %d", id, s.Address, s.Port))
			}
			if s.Weight != o.Weight {
				cmds = append(cmds, fmt.Sprintf("set server %s weight %d", id, s.Weight))
			}
			if s.Disabled != o.Disabled {
				state := "ready"
				if s.Disabled {
					state = "maint"
				}
				cmds = append(cmds, fmt.Sprintf("set server %s state %s", id, state))
			}
		}
	}
	if len(old.Backends) != len(new.Backends) {
		return nil, false
	}
	return cmds, true
}
