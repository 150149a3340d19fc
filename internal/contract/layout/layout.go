// Package layout is where the data plane's files and sockets are in its
// containers: the agent, the supervisors and the DaemonSet agree on it
// through this package. It imports nothing but the standard library, so the
// supervisors' small binary (cmd/hakeeper-supervise) carries none of the
// Kubernetes client's packages.
package layout

import "path"

// Paths locate the files HAProxy and Keepalived share with the agent.
//
// Each directory below the two roots is its own volume in the pod, shared
// by exactly the containers that use it and read-only for the ones that
// only read it: HAProxy, which parses untrusted traffic, can neither write
// keepalived.conf nor reach keepalived's sockets, and keepalived cannot
// write haproxy.cfg (see internal/desired's volumes).
type Paths struct {
	// RunDir is the root of the memory-backed directories: sockets, pid
	// files, tracked files, the notify FIFO and TLS material, so private
	// keys never touch a disk.
	RunDir string
	// ConfigDir is the root of the rendered configs' directories.
	ConfigDir string
}

// Default are the paths inside the data-plane containers.
func Default() Paths {
	return Paths{RunDir: "/var/run/hakeeper", ConfigDir: "/etc/hakeeper"}
}

// The directories under the roots, one volume each.
const (
	// HAProxyDir (under ConfigDir) holds haproxy.cfg: the agent writes it,
	// HAProxy reads it.
	HAProxyDir = "haproxy"
	// KeepalivedDir (under ConfigDir) holds keepalived.conf and the VRRP
	// peers: the agent writes them, keepalived and its supervisor read them.
	KeepalivedDir = "keepalived"
	// HAProxyRunDir (under RunDir) holds HAProxy's sockets and its saved
	// server state: HAProxy and the agent.
	HAProxyRunDir = "haproxy"
	// KeepalivedRunDir (under RunDir) holds keepalived's pid files, its
	// notify FIFO, the tracked files the agent sets and the supervisor's
	// control socket: keepalived and the agent.
	KeepalivedRunDir = "keepalived"
	// HealthDir (under RunDir) holds the one tracked file HAProxy's
	// supervisor sets when HAProxy exits: the agent, HAProxy's container
	// and keepalived (which creates it).
	HealthDir = "health"
	// TLSDir (under RunDir) holds the listeners' PEM files: the agent
	// writes them, HAProxy reads them.
	TLSDir = "tls"
	// AgentDir (under RunDir) holds what only the agent reads: its
	// heartbeat and the record of what it applied.
	AgentDir = "agent"
)

// File names inside Paths, shared with the agent and the DaemonSet.
const (
	HAProxyConfigFile    = "haproxy.cfg"
	KeepalivedConfigFile = "keepalived.conf"
	VRRPPeersFile        = "vrrp-peers"
	RuntimeSocketFile    = "haproxy.sock"
	MasterSocketFile     = "haproxy-master.sock"
	MetricsSocketFile    = "haproxy-metrics.sock"
	ServerStateFile      = "haproxy.state"
	TrackFile            = "haproxy.health"
	PreemptHoldFile      = "preempt.hold"
	NoServersFile        = "no-servers"
	MaintenanceFile      = "maintenance"
	HeartbeatFile        = "agent.heartbeat"
	NotifyFIFOFile       = "keepalived.fifo"
	KeepalivedPIDFile    = "keepalived.pid"
	KeepalivedVRRPPID    = "keepalived-vrrp.pid"
	KeepalivedControl    = "control.sock"
	candidateTLSDir      = ".candidate"
)

// HAProxyConfigDir is the directory of haproxy.cfg.
func (p Paths) HAProxyConfigDir() string { return path.Join(p.ConfigDir, HAProxyDir) }

// HAProxyConfig is haproxy.cfg.
func (p Paths) HAProxyConfig() string { return path.Join(p.HAProxyConfigDir(), HAProxyConfigFile) }

// KeepalivedConfigDir is the directory of keepalived.conf.
func (p Paths) KeepalivedConfigDir() string { return path.Join(p.ConfigDir, KeepalivedDir) }

// KeepalivedConfig is keepalived.conf.
func (p Paths) KeepalivedConfig() string {
	return path.Join(p.KeepalivedConfigDir(), KeepalivedConfigFile)
}

// VRRPPeers lists, one per line, the addresses keepalived accepts VRRP
// adverts from (the other data-plane nodes'); keepalived's supervisor
// drops every other advert for the router ID (internal/vrrpfilter).
func (p Paths) VRRPPeers() string { return path.Join(p.KeepalivedConfigDir(), VRRPPeersFile) }

// HAProxyRun is the directory of HAProxy's sockets and state.
func (p Paths) HAProxyRun() string { return path.Join(p.RunDir, HAProxyRunDir) }

// KeepalivedRun is the directory of keepalived's runtime files.
func (p Paths) KeepalivedRun() string { return path.Join(p.RunDir, KeepalivedRunDir) }

// Health is the directory of HAProxy's tracked health file.
func (p Paths) Health() string { return path.Join(p.RunDir, HealthDir) }

// TLS is the directory of the listeners' PEM files.
func (p Paths) TLS() string { return path.Join(p.RunDir, TLSDir) }

// Agent is the agent's own directory.
func (p Paths) Agent() string { return path.Join(p.RunDir, AgentDir) }

// RuntimeSocket is HAProxy's runtime API socket.
func (p Paths) RuntimeSocket() string { return path.Join(p.HAProxyRun(), RuntimeSocketFile) }

// MasterSocket is HAProxy's master CLI socket (given on the command line).
func (p Paths) MasterSocket() string { return path.Join(p.HAProxyRun(), MasterSocketFile) }

// MetricsSocket is where HAProxy's Prometheus exporter listens: a unix
// socket the agent serves to authorized scrapers, so nothing listens on a
// virtual IP or the node's address but the agent.
func (p Paths) MetricsSocket() string { return path.Join(p.HAProxyRun(), MetricsSocketFile) }

// ServerState is where server states are saved across reloads.
func (p Paths) ServerState() string { return path.Join(p.HAProxyRun(), ServerStateFile) }

// TrackFile is the file keepalived tracks: 0 means HAProxy answers.
func (p Paths) TrackFile() string { return path.Join(p.Health(), TrackFile) }

// PreemptHold is the file keepalived tracks to hold a recovering node at
// the lowest priority: 1 holds, 0 releases.
func (p Paths) PreemptHold() string { return path.Join(p.KeepalivedRun(), PreemptHoldFile) }

// NoServers is the file keepalived tracks to lower a node none of whose
// backends has a server up to the lowest priority: 1 lowers, 0 does not.
func (p Paths) NoServers() string { return path.Join(p.KeepalivedRun(), NoServersFile) }

// Maintenance is the file keepalived tracks to lower a node under
// maintenance to the lowest priority: 1 lowers, 0 does not.
func (p Paths) Maintenance() string { return path.Join(p.KeepalivedRun(), MaintenanceFile) }

// Heartbeat is touched by the agent's health loop; its liveness probe
// reads its age.
func (p Paths) Heartbeat() string { return path.Join(p.Agent(), HeartbeatFile) }

// NotifyFIFO is where keepalived reports state changes.
func (p Paths) NotifyFIFO() string { return path.Join(p.KeepalivedRun(), NotifyFIFOFile) }

// KeepalivedPID is keepalived's pid file (its parent process).
func (p Paths) KeepalivedPID() string { return path.Join(p.KeepalivedRun(), KeepalivedPIDFile) }

// KeepalivedVRRPPID is the pid file of keepalived's VRRP process.
func (p Paths) KeepalivedVRRPPID() string { return path.Join(p.KeepalivedRun(), KeepalivedVRRPPID) }

// KeepalivedControl is the socket of keepalived's supervisor, through
// which the agent asks for a reload: the containers do not share a process
// namespace, so the agent cannot signal keepalived itself.
func (p Paths) KeepalivedControl() string { return path.Join(p.KeepalivedRun(), KeepalivedControl) }

// CandidateCertificateFile is where a listener's new PEM is checked before
// it replaces CertificateFile.
func (p Paths) CandidateCertificateFile(listener string) string {
	return path.Join(p.TLS(), candidateTLSDir, listener+".pem")
}

// CertificateFile is the PEM (certificate and key) of a TLS listener.
func (p Paths) CertificateFile(listener string) string {
	return path.Join(p.TLS(), listener+".pem")
}

// HAProxyChroot is the empty, read-only directory HAProxy's workers chroot
// into once they have dropped to HAProxyWorkerUID.
const HAProxyChroot = "/var/lib/hakeeper/empty"

// HAProxyWorkerUID and HAProxyWorkerGID are the user HAProxy's workers,
// the processes that parse traffic, run as: no file in the pod belongs to
// it, and it is no user the image or the node gives a meaning to. The
// master stays root to bind ports below 1024 and re-execute for reloads.
const (
	HAProxyWorkerUID = 64535
	HAProxyWorkerGID = 64535
)
