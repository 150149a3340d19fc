package resolve

import (
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
)

// daemonSetTolerations are the taints the DaemonSet controller tolerates
// for every DaemonSet pod (hostNetwork ones included), so they do not keep
// a node from running the load balancer. The not-ready and unreachable
// NoSchedule taints come and go with kubelet heartbeats; a pod already
// running stays, so membership ignores them rather than rewriting every
// peer's keepalived.conf during an incident.
var daemonSetTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// SelectNodes returns the names of the nodes the DaemonSet will run on:
// those matching selector whose NoSchedule and NoExecute taints are all
// tolerated. The result is sorted.
func SelectNodes(nodes []corev1.Node, selector map[string]string, tolerations []corev1.Toleration) []*corev1.Node {
	sel := labels.SelectorFromSet(selector)
	all := append(slices.Clone(tolerations), daemonSetTolerations...)
	var out []*corev1.Node
	for i := range nodes {
		n := &nodes[i]
		if n.DeletionTimestamp != nil || !sel.Matches(labels.Set(n.Labels)) || !toleratesAll(n.Spec.Taints, all) {
			continue
		}
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func toleratesAll(taints []corev1.Taint, tolerations []corev1.Toleration) bool {
	for i := range taints {
		t := &taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(tol corev1.Toleration) bool {
			return tol.ToleratesTaint(klog.Background(), t, false)
		}) {
			return false
		}
	}
	return true
}

// InternalIP returns the node's InternalIP of the wanted family, or "" when
// it has none.
func InternalIP(n *corev1.Node, ipv4 bool) string {
	for _, a := range n.Status.Addresses {
		if a.Type != corev1.NodeInternalIP {
			continue
		}
		if addr, err := netip.ParseAddr(a.Address); err == nil && addr.Is4() == ipv4 {
			return addr.String()
		}
	}
	return ""
}
