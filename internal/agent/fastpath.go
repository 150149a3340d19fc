package agent

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/render"
)

// serversOnlyChange tells whether newCfg is oldCfg, which `haproxy -c`
// accepted, with nothing changed but the address, weight and state of
// servers the runtime API changes, each to what servers says. servers has
// passed Validate, so every address, port and weight in it is one HAProxy
// accepts, and every other token is the one already checked: checking
// newCfg again would tell nothing new. Skipping it takes an endpoint
// change to HAProxy a `haproxy -c` sooner (0.1 to 0.2 s on a busy node).
func serversOnlyChange(oldCfg, newCfg string, servers contract.ServerSet) bool {
	oldLines, newLines := strings.Split(oldCfg, "\n"), strings.Split(newCfg, "\n")
	if len(oldLines) != len(newLines) || oldCfg == newCfg {
		return false
	}
	backend := ""
	for i, line := range newLines {
		fields := strings.Fields(line)
		if line != "" && line[0] != ' ' && line[0] != '\t' && len(fields) > 0 {
			// A section starts: only a backend's server lines may change.
			backend = ""
			if fields[0] == "backend" && len(fields) == 2 {
				backend = fields[1]
			}
		}
		if line == oldLines[i] {
			continue
		}
		old := strings.Fields(oldLines[i])
		if backend == "" || len(fields) < 5 || len(old) < 5 || fields[0] != "server" || old[0] != "server" ||
			fields[1] != old[1] || fields[3] != "weight" || old[3] != "weight" {
			return false
		}
		i := slices.IndexFunc(servers.Backends[backend], func(s contract.Server) bool { return s.Name == fields[1] })
		if i < 0 {
			return false
		}
		s := servers.Backends[backend][i]
		if fields[2] != render.ServerAddress(s.Address, s.Port) || fields[4] != strconv.Itoa(int(s.Weight)) ||
			disabled(fields) != s.Disabled {
			return false
		}
		if !slices.Equal(stable(fields), stable(old)) {
			return false
		}
	}
	return true
}

// disabled: the renderer puts the flag last, after weight and the
// options (a server or cookie may itself be named "disabled").
func disabled(fields []string) bool {
	return len(fields) > 5 && fields[len(fields)-1] == "disabled"
}

// stable is a server line without what the runtime API changes: the
// address, the weight's value and the disabled flag.
func stable(fields []string) []string {
	out := append([]string{fields[0], fields[1], fields[3]}, fields[5:]...)
	if disabled(fields) {
		out = out[:len(out)-1]
	}
	return out
}
