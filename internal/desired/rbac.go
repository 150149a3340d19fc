package desired

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// AgentServiceAccount is the identity of one LoadBalancer's agents.
func AgentServiceAccount(lb *v1alpha1.LoadBalancer) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: owned(lb, NamesFor(lb).ServiceAccount, ComponentAgent),
	}
}

// AgentRole lets the agents read their two config ConfigMaps and the TLS
// Secrets their listeners name, and write their report ConfigMap; every
// rule names its objects.
func AgentRole(lb *v1alpha1.LoadBalancer) *rbacv1.Role {
	names := NamesFor(lb)
	rules := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"},
			ResourceNames: []string{names.HAProxyConfigMap, names.KeepalivedConfigMap}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "patch"},
			ResourceNames: []string{names.ReportConfigMap}},
	}
	// An empty resourceNames would grant every Secret: add the rule only
	// when a listener names one.
	if secrets := TLSSecretNames(lb); len(secrets) > 0 {
		rules = append(rules, rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"},
			Verbs: []string{"get", "list", "watch"}, ResourceNames: secrets})
	}
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: owned(lb, names.Role, ComponentAgent),
		Rules:      rules,
	}
}

// AgentRoleBinding binds AgentRole to AgentServiceAccount.
func AgentRoleBinding(lb *v1alpha1.LoadBalancer) *rbacv1.RoleBinding {
	names := NamesFor(lb)
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: owned(lb, names.Role, ComponentAgent),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: names.Role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: names.ServiceAccount, Namespace: lb.Namespace}},
	}
}

// TLSSecretNames lists the Secrets the listeners name, sorted, once each.
func TLSSecretNames(lb *v1alpha1.LoadBalancer) []string {
	var out []string
	for _, l := range lb.Spec.Listeners {
		if l.TLS != nil && !slices.Contains(out, l.TLS.SecretRef.Name) {
			out = append(out, l.TLS.SecretRef.Name)
		}
	}
	slices.Sort(out)
	return out
}
