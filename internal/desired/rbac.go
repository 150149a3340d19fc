package desired

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// AgentServiceAccount is the identity of one LoadBalancer's agents.
func AgentServiceAccount(lb *v1alpha1.LoadBalancer, namespace string) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta: owned(lb, namespace, NamesFor(lb).ServiceAccount, ComponentAgent),
		// Only the agent container mounts a token (see podSpec).
		AutomountServiceAccountToken: ptr.To(false),
	}
}

// AgentRole lets the agents read their two config ConfigMaps and write
// their report ConfigMap, in the data-plane namespace; every rule names
// its objects.
func AgentRole(lb *v1alpha1.LoadBalancer, namespace string) *rbacv1.Role {
	names := NamesFor(lb)
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: owned(lb, namespace, names.Role, ComponentAgent),
		Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch"},
				ResourceNames: []string{names.HAProxyConfigMap, names.KeepalivedConfigMap}},
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "patch"},
				ResourceNames: []string{names.ReportConfigMap}},
		},
	}
}

// AgentRoleBinding binds AgentRole to AgentServiceAccount.
func AgentRoleBinding(lb *v1alpha1.LoadBalancer, namespace string) *rbacv1.RoleBinding {
	names := NamesFor(lb)
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: owned(lb, namespace, names.Role, ComponentAgent),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: names.Role},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: names.ServiceAccount, Namespace: namespace}},
	}
}

// TLSRole lets the agents read the TLS Secrets the listeners name, in the
// LoadBalancer's namespace, and nothing else there. Nil when no listener
// uses TLS: an empty resourceNames would grant every Secret.
func TLSRole(lb *v1alpha1.LoadBalancer) *rbacv1.Role {
	secrets := TLSSecretNames(lb)
	if len(secrets) == 0 {
		return nil
	}
	return &rbacv1.Role{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: ownedInTenantNamespace(lb, NamesFor(lb).TLSRole, ComponentAgent),
		Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"},
			Verbs: []string{"get", "list", "watch"}, ResourceNames: secrets}},
	}
}

// TLSRoleBinding binds TLSRole to the agents' ServiceAccount in the
// data-plane namespace.
func TLSRoleBinding(lb *v1alpha1.LoadBalancer, namespace string) *rbacv1.RoleBinding {
	names := NamesFor(lb)
	return &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: ownedInTenantNamespace(lb, names.TLSRole, ComponentAgent),
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: names.TLSRole},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: names.ServiceAccount, Namespace: namespace}},
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
