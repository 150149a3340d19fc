package contract

import (
	"encoding/json"
	"fmt"
	"regexp"

	corev1 "k8s.io/api/core/v1"
)

// The ConfigMaps the operator renders for each LoadBalancer, which the
// agents read.

// Keys inside the ConfigMaps.
const (
	KeyHAProxyConfig = "haproxy.cfg"
	KeySlots         = "slots.json"
	KeyTLS           = "tls.json"
	KeyVRRP          = "vrrp.json"
	// KeepalivedKeySuffix follows the node name: "<node>.conf".
	KeepalivedKeySuffix = ".conf"
)

// Environment variables the agent reads; the downward API fills them.
const (
	EnvNodeName = "NODE_NAME"
	// EnvPodName names the agent's pod in its reports, so the operator
	// knows a report comes from a pod it replaced and not from the last.
	EnvPodName      = "POD_NAME"
	EnvPodNamespace = "POD_NAMESPACE"
	// EnvPodUID names keepalived's supervisor's nftables table, so a pod
	// that replaces another on the node never removes its successor's.
	EnvPodUID       = "POD_UID"
	EnvHostIP       = "HOST_IP"
	EnvLoadBalancer = "HAKEEPER_LOADBALANCER"
	// EnvLoadBalancerNamespace is the LoadBalancer's own namespace, where
	// its TLS Secrets are; the pod runs in the data-plane namespace.
	EnvLoadBalancerNamespace = "HAKEEPER_LOADBALANCER_NAMESPACE"
)

// Binary is where the data-plane image installs hakeeper.
const Binary = "/usr/local/bin/hakeeper"

// SupervisorBinary is where the data-plane image installs
// hakeeper-supervise, which runs HAProxy and keepalived in their
// containers.
const SupervisorBinary = "/usr/local/bin/hakeeper-supervise"

// VRRPRecord is kept in the keepalived ConfigMap: the router ID and the
// priorities in use, so the next reconcile keeps them stable, and the
// preempt delay, which the agents enforce (see the renderer's HoldTrackName).
type VRRPRecord struct {
	VirtualRouterID     int32            `json:"virtualRouterID"`
	Priorities          map[string]int32 `json:"priorities"`
	PreemptDelaySeconds int32            `json:"preemptDelaySeconds,omitempty"`
	// VirtualIPs are the addresses keepalived moves (without prefix): a
	// restarted agent learns its node's role from whether the interface
	// holds the first.
	VirtualIPs []string `json:"virtualIPs,omitempty"`
	// Maintenance are the nodes to hand the virtual IPs over from: cordoned
	// or annotated hakeeper.io/maintenance=true. Their agents lower their
	// claim to the lowest priority.
	Maintenance []string `json:"maintenance,omitempty"`
	// Peers are the addresses the nodes send VRRP adverts from: every
	// node's keepalived supervisor drops adverts for the router ID from
	// any other address (internal/vrrpfilter).
	Peers []string `json:"peers,omitempty"`
}

// ParseVRRPRecord reads the record back; a missing or bad one is empty.
func ParseVRRPRecord(cm *corev1.ConfigMap) VRRPRecord {
	var r VRRPRecord
	if cm != nil {
		_ = json.Unmarshal([]byte(cm.Data[KeyVRRP]), &r)
	}
	return r
}

// ParseSlots reads the slot assignment back: backend to slot keys.
func ParseSlots(cm *corev1.ConfigMap) map[string][]string {
	out := map[string][]string{}
	if cm != nil {
		_ = json.Unmarshal([]byte(cm.Data[KeySlots]), &out)
	}
	return out
}

// ParseTLSSecrets reads the listener-to-Secret map back.
func ParseTLSSecrets(cm *corev1.ConfigMap) map[string]string {
	out := map[string]string{}
	if cm != nil {
		_ = json.Unmarshal([]byte(cm.Data[KeyTLS]), &out)
	}
	return out
}

var (
	listenerNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	secretNameRE   = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
)

// ValidateTLSSecrets checks the listener-to-Secret map before the agent
// uses it: a listener name becomes a file name on the node.
func ValidateTLSSecrets(m map[string]string) error {
	for listener, secret := range m {
		if len(listener) > 63 || !listenerNameRE.MatchString(listener) {
			return fmt.Errorf("%s: %q is not a listener name", KeyTLS, listener)
		}
		if len(secret) > 253 || !secretNameRE.MatchString(secret) {
			return fmt.Errorf("%s: %q is not a Secret name", KeyTLS, secret)
		}
	}
	return nil
}
