// Package desired computes, as pure functions, the objects the operator
// owns for a LoadBalancer: its ConfigMaps, the data-plane DaemonSet and the
// agent's ServiceAccount, Role and RoleBinding, all in the operator's
// data-plane namespace, out of tenants' reach; and, when its listeners use
// TLS, the Role and RoleBinding in the LoadBalancer's namespace that let
// its agents read exactly those Secrets. The controller applies them with
// server-side apply.
package desired

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// Labels and annotations hakeeper sets.
const (
	LabelName         = "app.kubernetes.io/name"
	LabelComponent    = "app.kubernetes.io/component"
	LabelManagedBy    = "app.kubernetes.io/managed-by"
	LabelLoadBalancer = "hakeeper.io/loadbalancer"
	// LabelLoadBalancerNamespace says whose the objects in the data-plane
	// namespace are (owner references cannot cross namespaces).
	LabelLoadBalancerNamespace = "hakeeper.io/loadbalancer-namespace"
	// Finalizer holds a LoadBalancer until its data plane, in another
	// namespace than its own, is deleted.
	Finalizer         = "hakeeper.io/dataplane"
	ManagedBy         = "hakeeper"
	FieldOwner        = "hakeeper"
	AnnotationApplied = "hakeeper.io/applied-hash"
	AnnotationLayout  = "hakeeper.io/layout-hash"
	// AnnotationTemplate on a data-plane pod is the hash of the pod
	// template it was made from: the operator replaces the pods whose
	// hash is not the DaemonSet's (see internal/rollout).
	AnnotationTemplate = "hakeeper.io/template-hash"
	// AnnotationHandover on a data-plane pod is when the operator asked
	// its node to hand the virtual IPs over before the pod is replaced.
	AnnotationHandover = "hakeeper.io/handover-since"
	ComponentConfig    = "config"
	ComponentDataPlane = "dataplane"
	ComponentAgent     = "agent"
)

// Names of the objects owned by one LoadBalancer.
type Names struct {
	HAProxyConfigMap    string
	KeepalivedConfigMap string
	ReportConfigMap     string
	DaemonSet           string
	ServiceAccount      string
	Role                string
	// TLSRole is the Role and RoleBinding in the LoadBalancer's own
	// namespace that let its agents read its TLS Secrets.
	TLSRole string
}

// NamesFor returns the names of a LoadBalancer's objects. In the data-plane
// namespace they start with "<namespace>.<name>", unique because namespace
// names hold no dot, and short enough because the API caps LoadBalancer
// names at 50 characters.
func NamesFor(lb *v1alpha1.LoadBalancer) Names {
	n := lb.Namespace + "." + lb.Name
	return Names{
		HAProxyConfigMap:    n + "-haproxy",
		KeepalivedConfigMap: n + "-keepalived",
		ReportConfigMap:     n + "-report",
		DaemonSet:           n + "-dataplane",
		ServiceAccount:      n + "-agent",
		Role:                n + "-agent",
		TLSRole:             "hakeeper-tls." + lb.Name,
	}
}

// Labels are set on every owned object; component says which part it is.
// Which LoadBalancer an object serves is said only by hakeeper's own
// labels, never by app.kubernetes.io/instance: Argo CD tracks an
// Application's objects by that label (label tracking), so an Application
// named like a LoadBalancer would claim its data plane and prune it.
func Labels(lb *v1alpha1.LoadBalancer, component string) map[string]string {
	return map[string]string{
		LabelName:         "hakeeper",
		LabelComponent:    component,
		LabelManagedBy:    ManagedBy,
		LabelLoadBalancer: lb.Name,
		// Namespace names are DNS labels: always a valid label value.
		LabelLoadBalancerNamespace: lb.Namespace,
	}
}

func hashOf(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}
