package contract

import (
	"encoding/json"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// The report: the format in which each node's agent tells the
// operator what it runs. Agents write one key per node into the
// LoadBalancer's report ConfigMap; the operator folds them into status.
// The agent may write only that one ConfigMap (its Role names it), so a
// compromised node cannot touch anything else.

// NodeReport is one node's view.
type NodeReport struct {
	// Interface holds the node's InternalIP; the operator renders the node's
	// keepalived.conf with it when spec.interface is empty.
	Interface string `json:"interface,omitempty"`
	// LinkLocal is the interface's IPv6 link-local address: the source of
	// the node's IPv6 multicast VRRP adverts, which the other nodes' VRRP
	// filters accept.
	LinkLocal string `json:"linkLocal,omitempty"`
	// Addresses are the node's own unicast addresses outside the VRRP
	// interface (a CNI gateway, kube-ipvs0, a second NIC): HAProxy on the
	// host's network reaches the node itself there, so no server may be
	// one. The VRRP interface's are left out, since it carries every
	// LoadBalancer's virtual IPs; its own address is the Node's.
	Addresses []string `json:"addresses,omitempty"`
	// Pod is the agent's pod (an older agent reports none).
	Pod string `json:"pod,omitempty"`
	// Role is keepalived's state for this LoadBalancer.
	Role v1alpha1.VRRPRole `json:"role,omitempty"`
	// Transitions counts keepalived's state changes since the agent
	// started.
	Transitions int64 `json:"transitions,omitempty"`
	// ConfigHash is the hash of the haproxy.cfg and keepalived.conf applied.
	ConfigHash string `json:"configHash,omitempty"`
	// Healthy is true while HAProxy answers and has a server up.
	Healthy bool `json:"healthy,omitempty"`
	// Message explains what is wrong, for example the error HAProxy gave
	// for a rejected config.
	Message string `json:"message,omitempty"`
	// Fault says in a few words why the node does not claim the virtual
	// IPs at its own priority ("HAProxy died", "no server up"); empty when
	// it does. The operator's event for a VIP move quotes the last
	// holder's.
	Fault string `json:"fault,omitempty"`
	// Backends counts servers per backend as HAProxy's checks see them.
	Backends map[string]BackendCount `json:"backends,omitempty"`
	// HoldsObserved says the agent looks at its interface, so Holds is
	// what it carries (an older agent reports neither).
	HoldsObserved bool `json:"holdsObserved,omitempty"`
	// Holds are the virtual IPs the node's interface carries now.
	Holds []string `json:"holds,omitempty"`
}

// BackendCount is one backend's servers up and in total.
type BackendCount struct {
	Up    int32 `json:"up"`
	Total int32 `json:"total"`
}

// ParseReports reads a report ConfigMap's data: node name to report. Entries that
// do not parse are skipped; a node that wrote garbage has not reported.
func ParseReports(data map[string]string) map[string]NodeReport {
	out := make(map[string]NodeReport, len(data))
	for node, text := range data {
		var r NodeReport
		if json.Unmarshal([]byte(text), &r) == nil {
			out[node] = r
		}
	}
	return out
}
