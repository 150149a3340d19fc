package controllers_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/controllers"
	"github.com/hakeeper/hakeeper/internal/manager"
	"github.com/hakeeper/hakeeper/internal/servicelb"
)

// TestIPModeDroppedIsNotPublished: an API server before 1.30, or with the
// LoadBalancerIPMode gate off, stores status.loadBalancer.ingress without
// ipMode, which kube-proxy reads as VIP and captures. The operator takes
// the address back and says why, once, and publishes nothing after.
//
// A fake client stands in for the API server here: the envtest and lab
// API servers are 1.37, where the field is always kept, so the interceptor
// drops it from the status patch as an older server would.
func TestIPModeDroppedIsNotPublished(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "old", UID: "svc-uid"}, Spec: corev1.ServiceSpec{
		Type: corev1.ServiceTypeLoadBalancer, LoadBalancerClass: ptrTo(servicelb.ClassPrefix + "edge"),
		Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}},
	}}
	tr, err := servicelb.Translate(svc, "edge")
	if err != nil {
		t.Fatal(err)
	}
	lb := &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "old"}, Spec: tr.Spec,
		Status: v1alpha1.LoadBalancerStatus{ActiveNode: "node-a", VirtualIPs: []string{"198.18.0.100/24"}}}
	if err := controllerutil.SetControllerReference(svc, lb, manager.Scheme()); err != nil {
		t.Fatal(err)
	}
	patches := 0
	c := fake.NewClientBuilder().WithScheme(manager.Scheme()).
		WithObjects(svc, lb, testClass("edge", "198.18.0.96/27"), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "old"}}).
		WithStatusSubresource(&corev1.Service{}, &v1alpha1.LoadBalancer{}).
		WithInterceptorFuncs(interceptor.Funcs{
			SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
				patches++
				if s, ok := obj.(*corev1.Service); ok {
					for i := range s.Status.LoadBalancer.Ingress {
						s.Status.LoadBalancer.Ingress[i].IPMode = nil
					}
				}
				return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
			},
		}).Build()
	recorder := events.NewFakeRecorder(10)
	r := &controllers.ServiceReconciler{Client: c, Recorder: recorder}
	req := ctrl.Request{NamespacedName: client.ObjectKeyFromObject(svc)}

	for range 3 { // the status change wakes the reconciler again
		if _, err := r.Reconcile(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	got := &corev1.Service{}
	if err := c.Get(context.Background(), req.NamespacedName, got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("ingress %+v published without ipMode", got.Status.LoadBalancer.Ingress)
	}
	if patches != 2 {
		t.Errorf("%d status patches, want 2 (published, taken back), none after", patches)
	}
	var warnings []string
	for len(recorder.Events) > 0 {
		if e := <-recorder.Events; strings.HasPrefix(e, corev1.EventTypeWarning) {
			warnings = append(warnings, e)
		}
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], controllers.EventSyncLoadBalancerFailed) || !strings.Contains(warnings[0], "dropped status.loadBalancer.ingress[].ipMode") {
		t.Errorf("warnings %q, want one saying the API server dropped ipMode", warnings)
	}
}
