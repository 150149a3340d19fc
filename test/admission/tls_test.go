// Package admission checks the admission policies in config/admission on a
// real kube-apiserver with RBAC authorization.
package admission

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/apiserver/pkg/admission/plugin/policy/validating"
	"k8s.io/apiserver/pkg/cel/openapi/resolver"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/yaml"

	"github.com/go-logr/logr"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

const policyName = "hakeeper-tls-secret-access"

// vip is the LoadBalancers' only virtual IP.
const vip = "198.18.0.100"

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	var err error
	env, err = testenv.Start()
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

func TestTLSSecretAccess(t *testing.T) {
	ctx := context.Background()
	admin := env.Client

	// The policy means nothing if the API server allows everyone everything
	// (envtest defaults to --authorization-mode=RBAC; make sure).
	var secrets corev1.SecretList
	if err := as(t, "tenant").List(ctx, &secrets, client.InNamespace("default")); !apierrors.IsForbidden(err) {
		t.Fatalf("a user without any Role listed Secrets (error %v): the API server does not authorize with RBAC", err)
	}

	applied := time.Now()
	applyAdmissionConfig(t)

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "tls-access-"}}
	must(t, admin.Create(ctx, ns))
	t.Cleanup(func() { _ = admin.Delete(context.Background(), ns) })
	for _, name := range []string{"cert-mine", "cert-other"} {
		must(t, admin.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns.Name},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{"tls.crt": []byte("not a certificate"), "tls.key": []byte("not a key")},
		}))
	}
	lbRule := func(verbs ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{"hakeeper.io"}, Resources: []string{"loadbalancers"}, Verbs: verbs}
	}
	secretRule := func(names ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}, ResourceNames: names}
	}
	var sixteen []string
	for i := range 16 {
		sixteen = append(sixteen, fmt.Sprintf("cert-%02d", i))
	}
	grant(t, ns.Name, "tenant", lbRule("get", "create", "update"), secretRule("cert-mine"))
	grant(t, ns.Name, "other", lbRule("get", "update"))
	// reader may get every Secret of the namespace; picky sixteen by name.
	grant(t, ns.Name, "reader", lbRule("create"), secretRule())
	grant(t, ns.Name, "picky", lbRule("create"), secretRule(sixteen...))

	// The API server enforces a policy once its informers have both objects
	// (and RBAC once it has the Roles): probe until the policy denies.
	probe := loadBalancer(t, ns.Name, "probe", tlsListener("https", 443, "cert-other"))
	deadline := time.Now().Add(time.Minute)
	accepted, forbidden := 0, 0
	for {
		err := as(t, "tenant").Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), policyName) {
			break
		}
		// Accepted: the policy is not enforced yet; forbidden: the Role is
		// not either. Anything else will not change by waiting.
		switch {
		case err == nil:
			accepted++
		case apierrors.IsForbidden(err):
			forbidden++
		default:
			t.Fatalf("probe: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the policy does not deny a LoadBalancer naming a Secret its writer cannot read after a minute; last answer: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("policy enforced %v after it was created (probes before: %d accepted, %d denied by RBAC)",
		time.Since(applied).Round(time.Millisecond), accepted, forbidden)
	checkTypeWarnings(t)

	field := func(i int) string { return fmt.Sprintf("spec.listeners[%d].tls.secretRef.name", i) }
	secret := func(name string) string { return ns.Name + "/" + name }

	t.Run("create naming a readable Secret", func(t *testing.T) {
		lb := loadBalancer(t, ns.Name, "mine", tlsListener("https", 443, "cert-mine"))
		must(t, as(t, "tenant").Create(ctx, lb))
	})
	t.Run("create naming an unreadable Secret", func(t *testing.T) {
		// listeners[0] has no tls.
		lb := loadBalancer(t, ns.Name, "theirs", plainListener, tlsListener("https", 443, "cert-other"))
		wantDenied(t, as(t, "tenant").Create(ctx, lb), field(1), secret("cert-other"), "you may not read Secret")
	})
	t.Run("update adding an unreadable Secret", func(t *testing.T) {
		c := as(t, "tenant")
		lb := get(t, c, ns.Name, "mine")
		addListener(t, lb, "https-alt", 8443, "cert-other")
		wantDenied(t, c.Update(ctx, lb), field(1), secret("cert-other"))
	})
	t.Run("unrelated update by a user who reads no Secret", func(t *testing.T) {
		c := as(t, "other")
		lb := get(t, c, ns.Name, "mine")
		backends, _, _ := unstructured.NestedSlice(lb.Object, "spec", "backends")
		servers := backends[0].(map[string]any)["servers"].([]any)
		servers[0].(map[string]any)["port"] = int64(8081)
		must(t, unstructured.SetNestedSlice(lb.Object, backends, "spec", "backends"))
		must(t, c.Update(ctx, lb))
	})
	t.Run("update repeating a Secret the object already names", func(t *testing.T) {
		c := as(t, "other")
		lb := get(t, c, ns.Name, "mine")
		addListener(t, lb, "https-alt", 8443, "cert-mine")
		must(t, c.Update(ctx, lb))
	})
	t.Run("update adding a Secret by a user who reads no Secret", func(t *testing.T) {
		c := as(t, "other")
		lb := get(t, c, ns.Name, "mine")
		addListener(t, lb, "https-3", 9443, "cert-other")
		wantDenied(t, c.Update(ctx, lb), field(2), secret("cert-other"))
	})
	t.Run("of several unreadable Secrets the first is named", func(t *testing.T) {
		lb := loadBalancer(t, ns.Name, "several", tlsListener("a", 443, "cert-mine"),
			tlsListener("b", 444, "cert-other"), tlsListener("c", 445, "cert-x"), tlsListener("d", 446, "cert-other"))
		wantDenied(t, as(t, "tenant").Create(ctx, lb, client.DryRunAll), field(1), secret("cert-other"))
	})

	// The cost budget: listeners has at most 32 items, an authorizer check
	// costs 350,000 of the 1,000,000 per expression and 10,000,000 per
	// policy evaluation.
	names := func(n int, f func(i int) string) []string {
		var l []string
		for i := range n {
			l = append(l, f(i))
		}
		return l
	}
	t.Run("32 listeners with one readable Secret", func(t *testing.T) {
		lb := loadBalancer(t, ns.Name, "same", tlsListeners(names(32, func(int) string { return "cert-mine" }))...)
		must(t, as(t, "tenant").Create(ctx, lb, client.DryRunAll))
	})
	t.Run("32 Secrets by a user who reads every Secret", func(t *testing.T) {
		lb := loadBalancer(t, ns.Name, "many", tlsListeners(names(32, func(i int) string { return fmt.Sprintf("cert-%02d", i) }))...)
		must(t, as(t, "reader").Create(ctx, lb, client.DryRunAll))
	})
	t.Run("16 Secrets readable by name", func(t *testing.T) {
		lb := loadBalancer(t, ns.Name, "sixteen", tlsListeners(sixteen)...)
		must(t, as(t, "picky").Create(ctx, lb, client.DryRunAll))
	})
	t.Run("16 Secrets, the last unreadable", func(t *testing.T) {
		l := append(append([]string{}, sixteen[:15]...), "cert-other")
		lb := loadBalancer(t, ns.Name, "sixteen", tlsListeners(l)...)
		wantDenied(t, as(t, "picky").Create(ctx, lb, client.DryRunAll), field(15), secret("cert-other"))
	})
	t.Run("more than 16 new Secrets readable only by name", func(t *testing.T) {
		lb := loadBalancer(t, ns.Name, "seventeen", tlsListeners(append(sixteen, "cert-16"))...)
		wantDenied(t, as(t, "picky").Create(ctx, lb, client.DryRunAll), "names 17 Secrets", "at most 16")
	})
}

// applyAdmissionConfig creates every object of config/admission's
// kustomization, as `kubectl apply -k config/admission` would.
func applyAdmissionConfig(t *testing.T) {
	t.Helper()
	applyOnce.Do(func() { applyAdmissionObjects(t) })
	if t.Failed() {
		t.FailNow()
	}
}

// applyOnce: the tests share one API server and the policies once applied.
var applyOnce sync.Once

func applyAdmissionObjects(t *testing.T) {
	t.Helper()
	// The data-plane policies' parameters live in the operator's namespace.
	must(t, env.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: dataPlaneNamespace}}))
	dir := filepath.Join(testenv.RepoRoot(), "config", "admission")
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	must(t, err)
	var kustomization struct {
		Resources []string `json:"resources"`
	}
	must(t, yaml.Unmarshal(data, &kustomization))
	var kinds []string
	for _, file := range kustomization.Resources {
		data, err := os.ReadFile(filepath.Join(dir, file))
		must(t, err)
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			obj := &unstructured.Unstructured{}
			err := dec.Decode(&obj.Object)
			if errors.Is(err, io.EOF) {
				break
			}
			must(t, err)
			if len(obj.Object) == 0 {
				continue
			}
			must(t, env.Client.Create(context.Background(), obj))
			kinds = append(kinds, obj.GetKind()+"/"+obj.GetName())
		}
	}
	want := []string{"ValidatingAdmissionPolicy/" + policyName, "ValidatingAdmissionPolicyBinding/" + policyName,
		"ValidatingAdmissionPolicy/" + shapePolicy, "ValidatingAdmissionPolicyBinding/" + shapePolicy,
		"ValidatingAdmissionPolicy/" + podsPolicy, "ValidatingAdmissionPolicyBinding/" + podsPolicy,
		"ValidatingAdmissionPolicy/" + paramsPolicy, "ValidatingAdmissionPolicyBinding/" + paramsPolicy,
		"ConfigMap/" + paramsName}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Fatalf("config/admission holds %v, want %v", kinds, want)
	}
}

// checkTypeWarnings fails on what type checking the policy against the
// LoadBalancer schema served by the API server finds (a misspelt or renamed
// field, say). kube-controller-manager does this and writes
// status.typeChecking, but envtest runs no controller manager, so the test
// runs the same checker.
func checkTypeWarnings(t *testing.T) {
	t.Helper()
	checkPolicyTypes(t, policyName)
}

// typeWarnings type checks policy's validations, message expressions and
// (which kube-controller-manager skips: it takes variables to be dyn)
// variables.
func typeWarnings(t *testing.T, policy *admissionregistrationv1.ValidatingAdmissionPolicy) []string {
	t.Helper()
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	must(t, err)
	schemas := &resolver.ClientDiscoveryResolver{Discovery: dc}
	// The API server publishes a CRD's OpenAPI schema a moment after the
	// CRD is established.
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := schemas.ResolveSchema(testenv.LoadBalancerGVK)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no OpenAPI schema for LoadBalancers after 30 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checker := validating.TypeChecker{SchemaResolver: schemas, RestMapper: env.Client.RESTMapper()}
	ctx := checker.CreateContext(policy)
	// A checker that knows no types finds nothing.
	if checker.CheckExpression(ctx, "object.spec.listeners.map(l, l.tls.noSuchField)").String() == "" {
		t.Fatal("type checking does not see the LoadBalancer schema (does the policy match a named API version?)")
	}
	var warnings []string
	for _, w := range checker.Check(policy) {
		warnings = append(warnings, fmt.Sprintf("type checking %s: %s", w.FieldRef, w.Warning))
	}
	for i, v := range policy.Spec.Variables {
		if r := checker.CheckExpression(ctx, v.Expression).String(); r != "" {
			warnings = append(warnings, fmt.Sprintf("type checking spec.variables[%d] (%s): %s", i, v.Name, r))
		}
	}
	return warnings
}

// grant gives user a Role with rules in namespace ns.
func grant(t *testing.T, ns, user string, rules ...rbacv1.PolicyRule) {
	t.Helper()
	name := "test-" + user
	// The same grant again (go test -count) is no error.
	mustCreate := func(obj client.Object) {
		if err := env.Client.Create(context.Background(), obj); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}
	mustCreate(&rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Rules:      rules,
	})
	mustCreate(&rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})
}

// as is a client that impersonates user.
func as(t *testing.T, user string) client.Client {
	t.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user}
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	must(t, err)
	return c
}

const plainListener = "{name: http, port: 80, protocol: HTTP, defaultBackend: web}"

func tlsListener(name string, port int, secret string) string {
	return fmt.Sprintf("{name: %s, port: %d, protocol: HTTP, defaultBackend: web, tls: {secretRef: {name: %s}}}", name, port, secret)
}

// tlsListeners is one listener per Secret name.
func tlsListeners(secrets []string) []string {
	var l []string
	for i, s := range secrets {
		l = append(l, tlsListener(fmt.Sprintf("l-%02d", i), 8000+i, s))
	}
	return l
}

// loadBalancer is a minimal LoadBalancer with the given listeners (YAML flow
// mappings).
func loadBalancer(t *testing.T, ns, name string, listeners ...string) *unstructured.Unstructured {
	t.Helper()
	doc := fmt.Sprintf(`apiVersion: hakeeper.io/v1alpha1
kind: LoadBalancer
metadata: {name: %s, namespace: %s}
spec:
  virtualIPs: [%q]
  listeners:
  - %s
  backends: [{name: web, servers: [{name: a, address: 198.18.0.21, port: 8080}]}]
`, name, ns, vip, strings.Join(listeners, "\n  - "))
	obj := &unstructured.Unstructured{}
	must(t, yaml.Unmarshal([]byte(doc), &obj.Object))
	return obj
}

func get(t *testing.T, c client.Client, ns, name string) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{}
	obj.SetGroupVersionKind(testenv.LoadBalancerGVK)
	must(t, c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, obj))
	return obj
}

// addListener appends a TLS listener to lb.
func addListener(t *testing.T, lb *unstructured.Unstructured, name string, port int, secret string) {
	t.Helper()
	listeners, _, err := unstructured.NestedSlice(lb.Object, "spec", "listeners")
	must(t, err)
	var l map[string]any
	must(t, yaml.Unmarshal([]byte(tlsListener(name, port, secret)), &l))
	must(t, unstructured.SetNestedSlice(lb.Object, append(listeners, l), "spec", "listeners"))
}

// wantDenied fails unless err is the TLS policy's denial and mentions
// every string in want.
func wantDenied(t *testing.T, err error, want ...string) {
	t.Helper()
	wantDeniedBy(t, policyName, err, want...)
}

// wantDeniedBy fails unless err is policy's denial and mentions every
// string in want.
func wantDeniedBy(t *testing.T, policy string, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("accepted; want the policy to deny it")
	}
	if !strings.Contains(err.Error(), policy) {
		t.Fatalf("denied, but not by %s: %v", policy, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("the denial does not mention %q: %v", w, err)
		}
	}
	t.Logf("denied: %v", err)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
