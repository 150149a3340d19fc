package haproxyapi

import (
	"regexp"
	"strconv"
	"strings"
)

// MasterState is what the master CLI's `show proc` says of the master:
// how many reloads it went through and how many of those failed.
type MasterState struct {
	Reloads, Failed int
}

// `7394 master 1 [failed: 1] 0d00h00m05s 2.6.12` (HAProxy 2.6).
var masterLine = regexp.MustCompile(`^\s*\d+\s+master\s+(\d+)\s+\[failed:\s*(\d+)\]`)

// ParseShowProc reads the master's line of `show proc`.
func ParseShowProc(out string) (MasterState, bool) {
	for _, line := range strings.Split(out, "\n") {
		if m := masterLine.FindStringSubmatch(line); m != nil {
			reloads, _ := strconv.Atoi(m[1])
			failed, _ := strconv.Atoi(m[2])
			return MasterState{Reloads: reloads, Failed: failed}, true
		}
	}
	return MasterState{}, false
}
