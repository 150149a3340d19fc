package lab

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// EchoPort is the port the echo workload serves HTTP on.
const EchoPort = 8080

// EchoDeployment is a Deployment of the lab's echo workload (hack/echo),
// whose pods answer "pod=<name> client=<address>"; with proxyProtocol
// they expect a PROXY protocol v2 header on every connection. Its pods
// run as the restricted Pod Security level asks, from the image the
// nodes imported (no registry).
func (l *Lab) EchoDeployment(namespace, name string, replicas int32, proxyProtocol bool) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	args := []string{"--listen=:8080"}
	if proxyProtocol {
		args = append(args, "--proxy-protocol")
	}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: ptr.To(int64(10)),
					AutomountServiceAccountToken:  ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
					Containers: []corev1.Container{{
						Name: "echo", Image: l.images.Echo, ImagePullPolicy: corev1.PullNever, Args: args,
						Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{
							FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
						Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: EchoPort}},
						// A TCP probe: a kubelet's HTTP probe sends no
						// PROXY header.
						ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
							TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(EchoPort)}},
							PeriodSeconds: 1},
						SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false),
							ReadOnlyRootFilesystem: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
					}},
				},
			},
		},
	}
}
