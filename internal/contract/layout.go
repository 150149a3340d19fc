package contract

import "path"

// Paths locate the files HAProxy and Keepalived share with the agent.
type Paths struct {
	// RunDir holds sockets, the track file, the notify FIFO and TLS
	// material: a tmpfs in the pod, so private keys never touch a disk.
	RunDir string
	// ConfigDir holds the rendered configs.
	ConfigDir string
}

// DefaultPaths are the paths inside the data-plane containers.
func DefaultPaths() Paths {
	return Paths{RunDir: "/var/run/hakeeper", ConfigDir: "/etc/hakeeper"}
}

// File names inside Paths, shared with the agent and the DaemonSet.
const (
	HAProxyConfigFile    = "haproxy.cfg"
	KeepalivedConfigFile = "keepalived.conf"
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
	TLSDir               = "tls"
)

// RuntimeSocket is HAProxy's runtime API socket.
func (p Paths) RuntimeSocket() string { return path.Join(p.RunDir, RuntimeSocketFile) }

// MasterSocket is HAProxy's master CLI socket (given on the command line).
func (p Paths) MasterSocket() string { return path.Join(p.RunDir, MasterSocketFile) }

// MetricsSocket is where HAProxy's Prometheus exporter listens: a unix
// socket the agent serves to authorized scrapers, so nothing listens on a
// virtual IP or the node's address but the agent.
func (p Paths) MetricsSocket() string { return path.Join(p.RunDir, MetricsSocketFile) }

// ServerState is where server states are saved across reloads.
func (p Paths) ServerState() string { return path.Join(p.RunDir, ServerStateFile) }

// TrackFile is the file keepalived tracks: 0 means HAProxy answers.
func (p Paths) TrackFile() string { return path.Join(p.RunDir, TrackFile) }

// PreemptHold is the file keepalived tracks to hold a recovering node at
// the lowest priority: 1 holds, 0 releases.
func (p Paths) PreemptHold() string { return path.Join(p.RunDir, PreemptHoldFile) }

// NoServers is the file keepalived tracks to lower a node none of whose
// backends has a server up to the lowest priority: 1 lowers, 0 does not.
func (p Paths) NoServers() string { return path.Join(p.RunDir, NoServersFile) }

// Maintenance is the file keepalived tracks to lower a node under
// maintenance to the lowest priority: 1 lowers, 0 does not.
func (p Paths) Maintenance() string { return path.Join(p.RunDir, MaintenanceFile) }

// Heartbeat is touched by the agent's health loop; its liveness probe
// reads its age.
func (p Paths) Heartbeat() string { return path.Join(p.RunDir, HeartbeatFile) }

// NotifyFIFO is where keepalived reports state changes.
func (p Paths) NotifyFIFO() string { return path.Join(p.RunDir, NotifyFIFOFile) }

// CandidateCertificateFile is where a listener's new PEM is checked before
// it replaces CertificateFile.
func (p Paths) CandidateCertificateFile(listener string) string {
	return path.Join(p.RunDir, TLSDir+"-candidate", listener+".pem")
}

// CertificateFile is the PEM (certificate and key) of a TLS listener.
func (p Paths) CertificateFile(listener string) string {
	return path.Join(p.RunDir, TLSDir, listener+".pem")
}
