package lab

import (
	"fmt"
	"strconv"
	"sync/atomic"
)

// The lab class's pool is Prefix+96/27; the website, which most scenarios
// share, has Prefix+100 (WebsiteVIP). Scenarios keep their LoadBalancers,
// and so their addresses, until the lab goes, so each needs one of its own.
const (
	firstHandedOut = 101
	lastHandedOut  = 126
)

// WebsiteVIP is the website LoadBalancer's address.
const WebsiteVIP = Prefix + "100"

var handedOut atomic.Int32

// NextVirtualIP hands a scenario an address of the lab class's pool that no
// other scenario of this run was given, instead of a hand-picked octet
// two scenarios could both pick.
func NextVirtualIP() (string, error) {
	n := firstHandedOut + int(handedOut.Add(1)) - 1
	if n > lastHandedOut {
		return "", fmt.Errorf("the lab's pool has no address left for another scenario (%d handed out)", lastHandedOut-firstHandedOut+1)
	}
	return Prefix + strconv.Itoa(n), nil
}
