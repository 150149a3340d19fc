package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/manager"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestTenantAttacks acts as a tenant, an impersonated user who may write
// LoadBalancers and ConfigMaps in their own namespace and read one Secret,
// and tries each attack the trust-model issue lists. Each must be refused by
// the API server with a message naming the field or reference, or by the
// operator with a condition; none may reach a node.
func TestTenantAttacks(t *testing.T) {
	l := requireLab(t)
	ns := tenantNamespace(t, l)
	tenant := impersonate(t, l, "tenant")

	// A LoadBalancer the tenant may write, broken one way per attack.
	good := func(name string) string {
		return fmt.Sprintf(`apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancer
metadata: {name: %s, namespace: %s}
spec:
  listeners: [{name: http, port: 80, protocol: HTTP, defaultBackend: web}]
  backends: [{name: web, servers: [{name: b1, address: "%s", port: %d}]}]
`, name, ns, lab.BackendAddr(0), lab.BackendPort)
	}
	refusedByAPI := []struct {
		name, from, to, want string
	}{
		{"any image", "  listeners:", "  haproxy: {image: evil.example/root:latest}\n  listeners:", `unknown field "spec.haproxy.image"`},
		{"keepalived image", "  listeners:", "  keepalived: {image: evil.example/root:latest}\n  listeners:", `unknown field "spec.keepalived"`},
		{"tolerate everything", "  listeners:", "  tolerations: [{operator: Exists}]\n  listeners:", `unknown field "spec.tolerations"`},
		{"VIP every IPv4 address", "  listeners:", "  virtualIPs: [0.0.0.0/0]\n  listeners:", "spec.virtualIPs[0]"},
		{"VIP every IPv6 address", "  listeners:", "  virtualIPs: ['::/0']\n  listeners:", "spec.virtualIPs[0]"},
		{"VIP loopback", "  listeners:", "  virtualIPs: [127.0.0.1]\n  listeners:", "spec.virtualIPs[0]"},
		{"VIP cloud metadata", "  listeners:", "  virtualIPs: [169.254.169.254]\n  listeners:", "spec.virtualIPs[0]"},
		{"VIP VRRP multicast", "  listeners:", "  virtualIPs: [224.0.0.18]\n  listeners:", "spec.virtualIPs[0]"},
		{"server on loopback", `address: "` + lab.BackendAddr(0) + `"`, `address: "127.0.0.1"`, "spec.backends[0].servers[0].address"},
		{"server localhost", `address: "` + lab.BackendAddr(0) + `"`, `address: "localhost"`, "spec.backends[0].servers[0].address"},
		{"server unspecified", `address: "` + lab.BackendAddr(0) + `"`, `address: "0.0.0.0"`, "spec.backends[0].servers[0].address"},
		{"server cloud metadata", `address: "` + lab.BackendAddr(0) + `"`, `address: "169.254.169.254"`, "spec.backends[0].servers[0].address"},
		{"another tenant's Secret", "defaultBackend: web}]", "defaultBackend: web, tls: {secretRef: {name: not-yours}}}]",
			"not-yours"},
	}
	for _, tc := range refusedByAPI {
		doc := strings.Replace(good("attack"), tc.from, tc.to, 1)
		if doc == good("attack") {
			t.Fatalf("%s: the mutation did not apply", tc.name)
		}
		err := createStrict(tenant, doc)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want a refusal naming %s", tc.name, err, tc.want)
			_ = l.Client.Delete(ctx, &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: "attack", Namespace: ns}})
			continue
		}
		t.Logf("%s: refused: %v", tc.name, err)
	}

	// Outside the tenant's namespace: the data plane's.
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "evil", Namespace: lab.OperatorNamespace},
		Data: map[string]string{"haproxy.cfg": "program x\n  command /bin/sh -c id\n"}}
	if err := tenant.Create(ctx, cm); !apierrors.IsForbidden(err) {
		t.Errorf("a ConfigMap in %s: got %v, want Forbidden", lab.OperatorNamespace, err)
	}

	refusedByOperator := []struct {
		name, from, to, reason, want string
	}{
		{"VIP is a node's address", "  listeners:", fmt.Sprintf("  virtualIPs: [%q]\n  listeners:", lab.NodeAddr(1)),
			v1alpha1.LoadBalancerNotAllowedByClassReason, "spec.virtualIPs[0]"},
		{"VIP outside the pools", "  listeners:", fmt.Sprintf("  virtualIPs: [%q]\n  listeners:", lab.Prefix+"50"),
			v1alpha1.LoadBalancerNotAllowedByClassReason, "none of LoadBalancerClass lab's pools"},
		{"nodes beyond the class's", "  listeners:", "  nodeSelector: {hakeeper.io/edge: \"false\"}\n  listeners:",
			v1alpha1.LoadBalancerNotAllowedByClassReason, "spec.nodeSelector.hakeeper.io/edge"},
		{"server is a node", `address: "` + lab.BackendAddr(0) + `"`, fmt.Sprintf("address: %q", lab.NodeAddr(0)),
			v1alpha1.LoadBalancerNotAllowedByClassReason, "is an address of node " + lab.NodeName(0)},
		{"server is another namespace's Service", `address: "` + lab.BackendAddr(0) + `"`, `address: "kubernetes.default.svc"`,
			v1alpha1.LoadBalancerNotAllowedByClassReason, "allows static servers only by IP address"},
		{"server outside the allowed ranges", `address: "` + lab.BackendAddr(0) + `"`, `address: "198.19.0.10"`,
			v1alpha1.LoadBalancerNotAllowedByClassReason, "outside LoadBalancerClass lab's backends.allowedCIDRs"},
		{"a class that does not exist", "  listeners:", "  className: nope\n  listeners:",
			v1alpha1.LoadBalancerClassNotFoundReason, "LoadBalancerClass nope not found"},
		// The tenant may read this Secret, but the admin has not opted the
		// namespace in to TLS.
		{"TLS before the admin's opt-in", "defaultBackend: web}]", "defaultBackend: web, tls: {secretRef: {name: yours}}}]",
			v1alpha1.LoadBalancerNotAllowedByClassReason, "the platform admin opts a namespace in with the label hakeeper.io/tls-delegation=allowed"},
		{"server at AWS's IPv6 metadata", `address: "` + lab.BackendAddr(0) + `"`, `address: "fd00:ec2::254"`,
			v1alpha1.LoadBalancerNotAllowedByClassReason, "AWS's IPv6 instance metadata"},
		{"server at Azure's WireServer", `address: "` + lab.BackendAddr(0) + `"`, `address: "168.63.129.16"`,
			v1alpha1.LoadBalancerNotAllowedByClassReason, "Azure's WireServer"},
		// The lab's class allows the fast adverts and the connections its
		// scenarios use (envtest refuses them under a class that does not:
		// TestPerLoadBalancerCaps); its timeouts are the default's.
		{"day-long tunnels held on shared nodes", "  listeners:", "  haproxy: {timeouts: {tunnelSeconds: 86400}}\n  listeners:",
			v1alpha1.LoadBalancerNotAllowedByClassReason, "limits.maxTimeoutSeconds"},
	}
	for i, tc := range refusedByOperator {
		name := fmt.Sprintf("refused-%d", i)
		doc := strings.Replace(good(name), tc.from, tc.to, 1)
		if err := createStrict(tenant, doc); err != nil {
			t.Errorf("%s: the API refused what the operator should: %v", tc.name, err)
			continue
		}
		lb := &v1alpha1.LoadBalancer{}
		key := client.ObjectKey{Namespace: ns, Name: name}
		eventually(t, 30*time.Second, tc.name+" refused by the operator", func() error {
			if err := l.Client.Get(ctx, key, lb); err != nil {
				return err
			}
			c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
			if c == nil || c.Reason != tc.reason || !strings.Contains(c.Message, tc.want) {
				return fmt.Errorf("Degraded is %+v", c)
			}
			return nil
		})
		c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
		t.Logf("%s: %s: %s", tc.name, c.Reason, c.Message)
	}

	// None reached a node: no data plane of the tenant's exists, and every
	// node keeps its own address (keepalived would have taken it).
	var pods corev1.PodList
	if err := l.Client.List(ctx, &pods, client.InNamespace(lab.OperatorNamespace),
		client.MatchingLabels{desired.LabelLoadBalancerNamespace: ns}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		t.Errorf("data-plane pod %s of a refused LoadBalancer exists", p.Name)
	}
	time.Sleep(2 * time.Second)
	for i := range 3 {
		if !l.HoldsVIP(lab.NodeName(i), lab.NodeAddr(i)) {
			t.Errorf("%s lost its own address %s", lab.NodeName(i), lab.NodeAddr(i))
		}
	}
}

// TestTLSOptInIsTheAdmins: a namespace admin holds every rule of
// hakeeper-tls-delegation, so may bind it in their own namespace; that
// alone opts nothing in. The opt-in is the namespace's label, which they
// cannot write.
func TestTLSOptInIsTheAdmins(t *testing.T) {
	l := requireLab(t)
	ns := tenantNamespace(t, l)
	admin := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "ns-admin", Namespace: ns},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "ns-admin"}}}
	if err := l.Client.Create(ctx, admin); err != nil {
		t.Fatal(err)
	}
	nsAdmin := impersonate(t, l, "ns-admin")
	delegation := lab.TLSDelegation(ns)
	eventually(t, 10*time.Second, "the namespace admin binds hakeeper-tls-delegation", func() error {
		return nsAdmin.Create(ctx, delegation.DeepCopy())
	})
	nsObj := &corev1.Namespace{}
	if err := nsAdmin.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(nsObj.DeepCopy())
	nsObj.Labels[v1alpha1.LabelTLSDelegation] = v1alpha1.TLSDelegationAllowed
	if err := nsAdmin.Patch(ctx, nsObj, patch); !apierrors.IsForbidden(err) {
		t.Fatalf("the namespace admin labelled their namespace: got %v, want Forbidden", err)
	}

	doc := fmt.Sprintf(`apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancer
metadata: {name: tls, namespace: %s}
spec:
  listeners: [{name: https, port: 443, protocol: HTTP, defaultBackend: web, tls: {secretRef: {name: yours}}}]
  backends: [{name: web, servers: [{name: b1, address: "%s", port: %d}]}]
`, ns, lab.BackendAddr(0), lab.BackendPort)
	if err := createStrict(nsAdmin, doc); err != nil {
		t.Fatal(err)
	}
	lb := &v1alpha1.LoadBalancer{}
	key := client.ObjectKey{Namespace: ns, Name: "tls"}
	eventually(t, 30*time.Second, "the TLS listener refused", func() error {
		if err := l.Client.Get(ctx, key, lb); err != nil {
			return err
		}
		c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
		if c == nil || c.Reason != v1alpha1.LoadBalancerNotAllowedByClassReason || !strings.Contains(c.Message, v1alpha1.LabelTLSDelegation+"="+v1alpha1.TLSDelegationAllowed) {
			return fmt.Errorf("Degraded is %+v", c)
		}
		return nil
	})
	role := desired.TLSRole(lb)
	if err := l.Client.Get(ctx, client.ObjectKeyFromObject(role), &rbacv1.Role{}); !apierrors.IsNotFound(err) {
		t.Errorf("the operator gave the agents the namespace's Secrets before the opt-in: %v", err)
	}

	// The platform admin opts the namespace in: the agents get the Secret.
	if err := l.Client.Get(ctx, client.ObjectKey{Name: ns}, nsObj); err != nil {
		t.Fatal(err)
	}
	patch = client.MergeFrom(nsObj.DeepCopy())
	nsObj.Labels[v1alpha1.LabelTLSDelegation] = v1alpha1.TLSDelegationAllowed
	if err := l.Client.Patch(ctx, nsObj, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the agents given the Secret", func() error {
		return l.Client.Get(ctx, client.ObjectKeyFromObject(role), &rbacv1.Role{})
	})
}

// TestLoadBalancerQuota: count/loadbalancers.hakeeper.io in a namespace's
// ResourceQuota bounds its LoadBalancers at the API, before the operator
// sees them (kube-controller-manager's quota controller keeps the usage).
func TestLoadBalancerQuota(t *testing.T) {
	l := requireLab(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: newNamespace(t, l, "quota", nil)}}
	quota := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "loadbalancers", Namespace: ns.Name},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/loadbalancers.hakeeper.io": resource.MustParse("2")}}}
	if err := l.Client.Create(ctx, quota); err != nil {
		t.Fatal(err)
	}
	// kube-controller-manager finds the CRD's resource in its 30 s
	// discovery, then counts at its next quota sync (10 s in the lab).
	eventually(t, 90*time.Second, "the quota's usage counted", func() error {
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(quota), quota); err != nil {
			return err
		}
		if _, ok := quota.Status.Used["count/loadbalancers.hakeeper.io"]; !ok {
			return fmt.Errorf("status.used %v", quota.Status.Used)
		}
		return nil
	})
	// Named for a class that does not exist: the operator applies none.
	lb := func(name string) *v1alpha1.LoadBalancer {
		return &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name}, Spec: v1alpha1.LoadBalancerSpec{
			ClassName: "quota-none",
			Listeners: []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends:  []v1alpha1.Backend{{Name: "web", Servers: []v1alpha1.Server{{Name: "b1", Address: lab.BackendAddr(0), Port: lab.BackendPort}}}},
		}}
	}
	for _, name := range []string{"one", "two"} {
		if err := l.Client.Create(ctx, lb(name)); err != nil {
			t.Fatalf("%s within the quota: %v", name, err)
		}
	}
	err := l.Client.Create(ctx, lb("three"))
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "exceeded quota") || !strings.Contains(err.Error(), "count/loadbalancers.hakeeper.io") {
		t.Fatalf("a third LoadBalancer: got %v, want Forbidden for exceeding count/loadbalancers.hakeeper.io", err)
	}
	t.Logf("refused: %v", err)
}

// tenantNamespace creates a namespace whose only user is "tenant": it may
// write LoadBalancers and ConfigMaps and read Secret "yours", nothing else.
func tenantNamespace(t *testing.T, l *lab.Lab) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: newNamespace(t, l, "tenant", map[string]string{"pod-security.kubernetes.io/enforce": "restricted"})}}
	// Its LoadBalancers first (cleanups run last registered first).
	t.Cleanup(func() {
		var lbs v1alpha1.LoadBalancerList
		_ = l.Client.List(ctx, &lbs, client.InNamespace(ns.Name))
		for i := range lbs.Items {
			_ = l.Client.Delete(ctx, &lbs.Items[i])
		}
	})
	for _, name := range []string{"yours", "not-yours"} {
		if err := l.Client.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name},
			Data: map[string][]byte{"tls.crt": []byte("x"), "tls.key": []byte("x")}}); err != nil {
			t.Fatal(err)
		}
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: ns.Name}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{v1alpha1.GroupVersion.Group}, Resources: []string{"loadbalancers"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: []string{"yours"}},
	}}
	binding := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: "tenant", Namespace: ns.Name},
		RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "tenant"},
		Subjects: []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: "tenant"}}}
	for _, obj := range []client.Object{role, binding} {
		if err := l.Client.Create(ctx, obj); err != nil {
			t.Fatal(err)
		}
	}
	return ns.Name
}

// impersonate is a client acting as user, with the lab admin's credentials.
func impersonate(t *testing.T, l *lab.Lab, user string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(l.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: []string{"system:authenticated"}}
	c, err := client.New(cfg, client.Options{Scheme: manager.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// createStrict creates a YAML document the way kubectl does, with strict
// field validation: an unknown field is an error, not silently dropped.
func createStrict(c client.Client, doc string) error {
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		return err
	}
	return c.Create(ctx, u, client.FieldValidation(metav1.FieldValidationStrict))
}
