package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// Where config/default installs the operator.
const (
	OperatorNamespace = "hakeeper-system"
	ManagerDeployment = "hakeeper-controller-manager"
	// ManagerServiceAccount is the manager's identity (config/rbac).
	ManagerServiceAccount = "hakeeper-controller-manager"
)

// ClassName is the lab's default LoadBalancerClass.
const ClassName = "lab"

// Class is the LoadBalancerClass the lab's admin writes: virtual IPs from
// Prefix+96/27 on the nodes' /24 and, for IPv6, from Prefix6+100/120 on
// their /64 (second, so that allocation without ipFamilies stays IPv4),
// data planes on the nodes with nodeLabels. Its limits allow the fast
// health checks and adverts the scenarios and benchmarks use.
func Class(nodeLabels map[string]string) *v1alpha1.LoadBalancerClass {
	return &v1alpha1.LoadBalancerClass{
		ObjectMeta: metav1.ObjectMeta{Name: ClassName, Annotations: map[string]string{v1alpha1.AnnotationDefaultClass: "true"}},
		Spec: v1alpha1.LoadBalancerClassSpec{
			VirtualIPPools: []v1alpha1.VirtualIPPool{
				{Name: "lab", CIDR: Prefix + "96/27", PrefixLength: ptr.To[int32](24)},
				{Name: "lab-v6", CIDR: Prefix6 + "100/120", PrefixLength: ptr.To[int32](PrefixLen6)},
			},
			DataPlane: v1alpha1.DataPlaneSpec{NodeSelector: nodeLabels},
			Backends:  v1alpha1.BackendPolicy{AllowedCIDRs: []string{Prefix + "0/24"}},
			// The benchmarks sweep advert intervals down to 20 ms, the
			// scenarios share namespace default, and one asks for more
			// connections than the nodes' file limit (the agent's check).
			Limits: v1alpha1.ClassLimits{MinHealthCheckIntervalMilliseconds: ptr.To[int32](100),
				MinAdvertIntervalMilliseconds: ptr.To[int32](10), MaxLoadBalancersPerNamespace: ptr.To[int32](64),
				MaxVirtualIPsPerNamespace: ptr.To[int32](64), MaxConnections: ptr.To[int32](1000000)},
		},
	}
}

// OptInTLS is the admin's other half of a namespace's TLS opt-in: the
// label its own admins cannot write.
func (l *Lab) OptInTLS(ctx context.Context, namespace string) error {
	ns := &corev1.Namespace{}
	if err := l.Client.Get(ctx, client.ObjectKey{Name: namespace}, ns); err != nil {
		return err
	}
	patch := client.MergeFrom(ns.DeepCopy())
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels[v1alpha1.LabelTLSDelegation] = v1alpha1.TLSDelegationAllowed
	return l.Client.Patch(ctx, ns, patch)
}

// TLSDelegation is what the admin writes to let LoadBalancers in namespace
// use TLS listeners (config/rbac/tls_delegation_role.yaml): the manager may
// then give their agents the Secrets they name.
func TLSDelegation(namespace string) *rbacv1.RoleBinding {
	return &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "hakeeper-tls-delegation", Namespace: namespace},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "hakeeper-tls-delegation"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: ManagerServiceAccount, Namespace: OperatorNamespace}},
	}
}

// Kubectl runs the control plane's kubectl as the lab's admin.
func (l *Lab) Kubectl(ctx context.Context, args ...string) ([]byte, error) {
	out, err := l.KubectlCommand(ctx, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("kubectl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// KubectlCommand is kubectl as the lab's admin, not yet started: for
// commands that run alongside a test (port-forward).
func (l *Lab) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, filepath.Join(l.assets, "kubectl"), append([]string{"--kubeconfig=" + l.AdminKubeconfig}, args...)...)
}

// InstallOperator installs hakeeper the way a user of `make deploy`
// does: the one manifest hack/installer.sh writes (make build-installer's
// dist/install.yaml) for the built images, applied server-side; then it
// waits for the manager's Deployment to be available.
func (l *Lab) InstallOperator(ctx context.Context) error {
	manifest, err := l.Installer(ctx, l.images.Manager, l.images.DataPlane)
	if err != nil {
		return err
	}
	file := filepath.Join(l.dir, "install.yaml")
	if err := os.WriteFile(file, manifest, 0o644); err != nil {
		return err
	}
	if _, err := l.Kubectl(ctx, "apply", "--server-side", "-f", file); err != nil {
		return err
	}
	return l.WaitDeployment(ctx, OperatorNamespace, ManagerDeployment, 3*time.Minute)
}

// Installer is what `make build-installer IMG=manager
// DATAPLANE_IMG=dataPlane` writes to dist/install.yaml, built with the
// control plane's kubectl.
func (l *Lab) Installer(ctx context.Context, manager, dataPlane string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(testenv.RepoRoot(), "hack", "installer.sh"))
	cmd.Env = append(os.Environ(), "KUBECTL="+filepath.Join(l.assets, "kubectl"), "IMG="+manager, "DATAPLANE_IMG="+dataPlane)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("hack/installer.sh: %v: %s", err, stderr.String())
	}
	return out, nil
}

// WaitDeployment waits until a Deployment's rollout is complete: every
// replica updated and available.
func (l *Lab) WaitDeployment(ctx context.Context, namespace, name string, timeout time.Duration) error {
	err := Poll(ctx, 250*time.Millisecond, timeout, func() error {
		d := &appsv1.Deployment{}
		if err := l.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, d); err != nil {
			return err
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		s := d.Status
		if s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.AvailableReplicas == want && s.Replicas == want {
			return nil
		}
		return fmt.Errorf("%d/%d updated, %d available, conditions %+v", s.UpdatedReplicas, want, s.AvailableReplicas, s.Conditions)
	})
	if err != nil {
		return fmt.Errorf("deployment %s/%s not rolled out: %w", namespace, name, err)
	}
	return nil
}

// AllowDataPlaneImage adds an image to those the data-plane admission
// policy lets the manager run (config/admission's parameters), as the
// admin does for an image a class names.
func (l *Lab) AllowDataPlaneImage(ctx context.Context, image string) error {
	cm := &corev1.ConfigMap{}
	if err := l.Client.Get(ctx, client.ObjectKey{Namespace: OperatorNamespace, Name: DataPlanePolicyParams}, cm); err != nil {
		return err
	}
	if slices.Contains(strings.Fields(cm.Data["images"]), image) {
		return nil
	}
	patch := client.MergeFrom(cm.DeepCopy())
	cm.Data["images"] += " " + image
	return l.Client.Patch(ctx, cm, patch)
}

// DataPlanePolicyParams is the ConfigMap of the data-plane admission
// policy's parameters.
const DataPlanePolicyParams = "hakeeper-dataplane-policy"
