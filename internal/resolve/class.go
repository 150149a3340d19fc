package resolve

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// ClassName is the class a LoadBalancer uses: spec.className; else the one
// recorded in status when it was first reconciled (so marking another class
// as default later moves nobody); else the class marked default. It fails
// when there is no default, or several.
func ClassName(lb *v1alpha1.LoadBalancer, classes []v1alpha1.LoadBalancerClass) (string, error) {
	if lb.Spec.ClassName != "" {
		return lb.Spec.ClassName, nil
	}
	if lb.Status.ClassName != "" {
		return lb.Status.ClassName, nil
	}
	var defaults []string
	for i := range classes {
		if classes[i].Annotations[v1alpha1.AnnotationDefaultClass] == "true" && classes[i].DeletionTimestamp == nil {
			defaults = append(defaults, classes[i].Name)
		}
	}
	slices.Sort(defaults)
	switch len(defaults) {
	case 0:
		return "", fmt.Errorf("spec.className is empty and no LoadBalancerClass is marked %s: \"true\"", v1alpha1.AnnotationDefaultClass)
	case 1:
		return defaults[0], nil
	default:
		return "", fmt.Errorf("spec.className is empty and several LoadBalancerClasses are marked default (%s): name one", strings.Join(defaults, ", "))
	}
}

// NamespaceAllowed tells whether the class lets LoadBalancers in ns use it.
func NamespaceAllowed(class *v1alpha1.LoadBalancerClass, ns *corev1.Namespace) (bool, error) {
	if class.Spec.NamespaceSelector == nil {
		return true, nil
	}
	sel, err := metav1.LabelSelectorAsSelector(class.Spec.NamespaceSelector)
	if err != nil {
		return false, fmt.Errorf("LoadBalancerClass %s has an invalid namespaceSelector: %w", class.Name, err)
	}
	return sel.Matches(labels.Set(ns.Labels)), nil
}

// Placement is where a LoadBalancer's data plane runs: the class's nodes,
// narrowed by the LoadBalancer's own selector, with the class's
// tolerations only.
type Placement struct {
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
}

// PlacementOf merges the class's node selector with the LoadBalancer's. A
// key both set to different values selects no node, which is reported.
func PlacementOf(class *v1alpha1.LoadBalancerClass, lb *v1alpha1.LoadBalancer) (Placement, error) {
	if len(class.Spec.DataPlane.NodeSelector) == 0 {
		// The API refuses such a class now; one stored before is refused
		// here, or HAProxy would run on every node, control plane included.
		return Placement{}, fmt.Errorf("LoadBalancerClass %s: dataPlane.nodeSelector is empty: a class must name its data-plane nodes' labels", class.Name)
	}
	sel := map[string]string{}
	for k, v := range class.Spec.DataPlane.NodeSelector {
		sel[k] = v
	}
	for k, v := range lb.Spec.NodeSelector {
		if classValue, ok := sel[k]; ok && classValue != v {
			return Placement{}, fmt.Errorf("spec.nodeSelector.%s: %q contradicts the class's %q: a LoadBalancer may only narrow the class's nodes", k, v, classValue)
		}
		sel[k] = v
	}
	if len(sel) == 0 {
		sel = nil
	}
	return Placement{NodeSelector: sel, Tolerations: class.Spec.DataPlane.Tolerations}, nil
}

// TLSNotAllowed tells why a spec's TLS listeners may not be served in a
// namespace, or "". The platform admin opts a namespace in with a label,
// which its own admins cannot write: a RoleBinding to
// hakeeper-tls-delegation, which they can, is not enough.
func TLSNotAllowed(spec *v1alpha1.LoadBalancerSpec, ns *corev1.Namespace) string {
	if ns.Labels[v1alpha1.LabelTLSDelegation] == v1alpha1.TLSDelegationAllowed {
		return ""
	}
	for i, l := range spec.Listeners {
		if l.TLS != nil {
			return fmt.Sprintf("spec.listeners[%d].tls: namespace %s may not use TLS listeners: the platform admin opts a namespace in with the label %s=%s",
				i, ns.Name, v1alpha1.LabelTLSDelegation, v1alpha1.TLSDelegationAllowed)
		}
	}
	return ""
}
