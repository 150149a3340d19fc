package contract

import "github.com/hakeeper/hakeeper/internal/contract/layout"

// Paths locate the files HAProxy and Keepalived share with the agent (see
// internal/contract/layout, which the supervisors' binary imports alone).
type Paths = layout.Paths

// DefaultPaths are the paths inside the data-plane containers.
func DefaultPaths() Paths { return layout.Default() }

// The names of layout's the rest of the code uses.
const (
	HAProxyConfigFile    = layout.HAProxyConfigFile
	KeepalivedConfigFile = layout.KeepalivedConfigFile
	VRRPPeersFile        = layout.VRRPPeersFile
	RuntimeSocketFile    = layout.RuntimeSocketFile
	MasterSocketFile     = layout.MasterSocketFile
	PreemptHoldFile      = layout.PreemptHoldFile
	HAProxyWorkerUID     = layout.HAProxyWorkerUID
	HAProxyWorkerGID     = layout.HAProxyWorkerGID
	HAProxyChroot        = layout.HAProxyChroot
)
