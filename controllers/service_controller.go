package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/resolve"
	"github.com/hakeeper/hakeeper/internal/servicelb"
)

// ServiceReconciler serves Services of type LoadBalancer whose
// spec.loadBalancerClass is hakeeper.io/<class> (or, when DefaultClass is
// set, those with none): it writes a LoadBalancer of the Service's name,
// controlled by the Service, so everything a LoadBalancer has (class
// policy, allocation, the data plane, status) serves it; and it publishes
// the LoadBalancer's addresses in the Service's status.
type ServiceReconciler struct {
	Client   client.Client
	Recorder events.EventRecorder
	// DefaultClass serves Services without a spec.loadBalancerClass; empty
	// leaves them to whatever else serves them.
	DefaultClass string

	// told remembers the last refusal each Service was told about, so a
	// resync does not repeat the event.
	told sync.Map
	// ipModeDropped is set once the API server dropped an ingress's
	// ipMode: no address is published after that (a restart, as after an
	// upgrade, tries again).
	ipModeDropped atomic.Bool
}

// Service events, named as the cloud controllers name theirs.
const (
	EventEnsuringLoadBalancer   = "EnsuringLoadBalancer"
	EventEnsuredLoadBalancer    = "EnsuredLoadBalancer"
	EventSyncLoadBalancerFailed = "SyncLoadBalancerFailed"
	EventDeletedLoadBalancer    = "DeletedLoadBalancer"
	EventIPAllocated            = "IPAllocated"
	EventAllocationFailed       = "AllocationFailed"
)

// ConditionLoadBalancerPortsError is the Service condition of ports the
// load balancer does not serve, as the API names it.
const ConditionLoadBalancerPortsError = "LoadBalancerPortsError"

// LabelService marks a LoadBalancer written for a Service.
const LabelService = "hakeeper.io/service"

// +kubebuilder:rbac:groups="",resources=services/status,verbs=patch
// +kubebuilder:rbac:groups=hakeeper.io,resources=loadbalancers,verbs=create;update;delete

// Reconcile writes, corrects or deletes the Service's LoadBalancer and
// publishes its addresses. A write that fails is also told to the Service,
// in the API server's words, as the cloud controllers do: its owner may
// read events but not the operator's log.
func (r *ServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	svc, err := r.reconcile(ctx, req)
	// A conflict only means another writer came first: the retry follows.
	if err != nil && svc != nil && !apierrors.IsConflict(err) {
		r.tell(svc, nil, EventSyncLoadBalancerFailed, "Error syncing load balancer: "+err.Error())
	}
	return ctrl.Result{}, err
}

func (r *ServiceReconciler) reconcile(ctx context.Context, req ctrl.Request) (*corev1.Service, error) {
	svc := &corev1.Service{}
	lb, err := getOptional(ctx, r.Client, req.NamespacedName, &v1alpha1.LoadBalancer{})
	if err != nil {
		return nil, err
	}
	if err := r.Client.Get(ctx, req.NamespacedName, svc); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
		// Gone: the garbage collector deletes its LoadBalancer too; this
		// frees the address at once.
		r.forget(req.String())
		if lb != nil && controlledByService(lb) {
			return nil, client.IgnoreNotFound(r.Client.Delete(ctx, lb))
		}
		return nil, nil
	}
	owned := lb != nil && metav1.IsControlledBy(lb, svc)
	class := servicelb.ClassName(svc, r.DefaultClass)
	if class == "" || svc.DeletionTimestamp != nil {
		// Not, or no longer, ours (its type changed away).
		if owned {
			if err := client.IgnoreNotFound(r.Client.Delete(ctx, lb)); err != nil {
				return svc, err
			}
			r.Recorder.Eventf(svc, lb, corev1.EventTypeNormal, EventDeletedLoadBalancer, "Delete", "Deleted LoadBalancer %s: the Service is no longer hakeeper's", lb.Name)
			return svc, r.publish(ctx, svc, nil, nil)
		}
		return svc, nil
	}
	if lb != nil && !owned {
		r.tell(svc, lb, EventSyncLoadBalancerFailed, fmt.Sprintf("LoadBalancer %s/%s exists and is not this Service's: it is not touched; rename or delete it", lb.Namespace, lb.Name))
		return svc, nil
	}
	t, err := servicelb.Translate(svc, class)
	if err != nil {
		err = &refusal{reason: EventSyncLoadBalancerFailed, msg: err.Error()}
	} else {
		err = r.admit(ctx, svc, class, t.Spec)
	}
	if err != nil {
		var why *refusal
		if !errors.As(err, &why) {
			return svc, err // not the Service's fault: retried
		}
		r.tell(svc, why.related, why.reason, why.msg)
		return svc, nil
	}
	for _, w := range t.Warnings {
		r.tell(svc, nil, EventSyncLoadBalancerFailed, w)
	}
	if lb, err = r.ensure(ctx, svc, lb, t.Spec); err != nil {
		return svc, err
	}
	if c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition); c != nil && c.Status == metav1.ConditionTrue &&
		plan.RefusedForItsSpec(lb) {
		reason := EventSyncLoadBalancerFailed
		if c.Reason == v1alpha1.LoadBalancerAddressUnavailableReason {
			reason = EventAllocationFailed
		}
		r.tell(svc, lb, reason, c.Reason+": "+c.Message)
	}
	return svc, r.publish(ctx, svc, lb, t.Unserved)
}

// refusal is what the Service asks and cannot have, told to it as an
// event with reason; nothing is written until the Service or the class
// changes.
//
// related is what the refusal is about besides the Service, when it is
// not the Service alone (the class, the namespace): the event refers to it
// as it is now (its resource version), so that refusals of one reason for
// different causes stay apart instead of being folded into one series of
// the first one's note (what events.k8s.io recorders do with events of
// the same reason, action and objects).
type refusal struct {
	reason, msg string
	related     client.Object
}

func (e *refusal) Error() string { return e.msg }

func refused(related client.Object, format string, args ...any) error {
	return &refusal{reason: EventSyncLoadBalancerFailed, msg: fmt.Sprintf(format, args...), related: related}
}

func allocationFailed(related client.Object, format string, args ...any) error {
	return &refusal{reason: EventAllocationFailed, msg: fmt.Sprintf(format, args...), related: related}
}

// admit refuses before anything is written what the class refuses for the
// Service itself: a class that does not exist or does not allow the
// namespace, requested addresses outside its pools, and families it has
// no pool for (RequireDualStack needs one of each).
func (r *ServiceReconciler) admit(ctx context.Context, svc *corev1.Service, className string, spec v1alpha1.LoadBalancerSpec) error {
	class := &v1alpha1.LoadBalancerClass{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: className}, class); err != nil {
		if apierrors.IsNotFound(err) {
			return refused(nil, "LoadBalancerClass %s not found", className)
		}
		return err
	}
	if class.DeletionTimestamp != nil {
		// It waits for its LoadBalancers to go (make undeploy deletes
		// them): one written again now would hold it forever.
		return refused(class, "LoadBalancerClass %s is being deleted", className)
	}
	ns := &corev1.Namespace{}
	if err := r.Client.Get(ctx, client.ObjectKey{Name: svc.Namespace}, ns); err != nil {
		return err
	}
	if ok, err := resolve.NamespaceAllowed(class, ns); err != nil || !ok {
		return refused(ns, "LoadBalancerClass %s does not allow namespace %s (its namespaceSelector does not match)", className, svc.Namespace)
	}
	pools, err := resolve.Pools(class)
	if err != nil {
		return refused(class, "LoadBalancerClass %s: %v", className, err)
	}
	for _, ip := range spec.VirtualIPs {
		addr := netip.MustParseAddr(ip)
		if !slices.ContainsFunc(pools, func(p resolve.Pool) bool { return p.Range.Contains(addr) }) {
			return allocationFailed(class, "%s is in none of LoadBalancerClass %s's pools", ip, className)
		}
	}
	for _, family := range spec.IPFamilies {
		v6 := family == corev1.IPv6Protocol
		if !slices.ContainsFunc(pools, func(p resolve.Pool) bool { return p.Range.Addr().Is6() == v6 }) {
			return allocationFailed(class, "LoadBalancerClass %s has no %s pool (the Service's ipFamilies %v, ipFamilyPolicy %s)",
				className, family, svc.Spec.IPFamilies, ptrString(svc.Spec.IPFamilyPolicy))
		}
	}
	return nil
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return "unset"
	}
	return string(*p)
}

// ensure creates the Service's LoadBalancer, or puts its spec back to what
// the Service says.
func (r *ServiceReconciler) ensure(ctx context.Context, svc *corev1.Service, current *v1alpha1.LoadBalancer, spec v1alpha1.LoadBalancerSpec) (*v1alpha1.LoadBalancer, error) {
	if current != nil && equality.Semantic.DeepEqual(current.Spec, spec) {
		return current, nil
	}
	r.Recorder.Eventf(svc, nil, corev1.EventTypeNormal, EventEnsuringLoadBalancer, "Ensure", "Ensuring load balancer")
	if current == nil {
		lb := &v1alpha1.LoadBalancer{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace,
			Labels: map[string]string{LabelService: svc.Name}}, Spec: spec}
		if err := controllerutil.SetControllerReference(svc, lb, r.Client.Scheme()); err != nil {
			return nil, err
		}
		if err := r.Client.Create(ctx, lb); err != nil {
			return nil, fmt.Errorf("failed to create LoadBalancer %s: %w", lb.Name, err)
		}
		return lb, nil
	}
	current.Spec = spec
	if err := r.Client.Update(ctx, current); err != nil {
		return nil, fmt.Errorf("failed to update LoadBalancer %s: %w", current.Name, err)
	}
	return current, nil
}

// publish writes the Service's status.loadBalancer and its ports
// condition from the LoadBalancer's status.
func (r *ServiceReconciler) publish(ctx context.Context, svc *corev1.Service, lb *v1alpha1.LoadBalancer, unserved []servicelb.PortError) error {
	orig := svc.DeepCopy()
	ingress := servicelb.Ingress(lb, unserved, svc.Spec.Ports)
	if r.ipModeDropped.Load() && len(ingress) > 0 {
		r.tell(svc, nil, EventSyncLoadBalancerFailed, ipModeDroppedMessage)
		ingress = nil
	}
	// A copy: the patch's response is decoded into svc, and dropped
	// compares what was sent with what came back.
	svc.Status.LoadBalancer.Ingress = slices.Clone(ingress)
	if lb == nil || len(unserved) == 0 {
		meta.RemoveStatusCondition(&svc.Status.Conditions, ConditionLoadBalancerPortsError)
	} else {
		msgs := make([]string, len(unserved))
		for i, u := range unserved {
			msgs[i] = u.Message
		}
		meta.SetStatusCondition(&svc.Status.Conditions, metav1.Condition{Type: ConditionLoadBalancerPortsError, Status: metav1.ConditionTrue,
			Reason: "ProtocolNotProxied", Message: strings.Join(msgs, "; "), ObservedGeneration: svc.Generation})
	}
	if equality.Semantic.DeepEqual(orig.Status, svc.Status) {
		return nil
	}
	if err := r.Client.Status().Patch(ctx, svc, client.MergeFrom(orig)); err != nil {
		return client.IgnoreNotFound(err)
	}
	if dropped(ingress, svc.Status.LoadBalancer.Ingress) {
		// An API server before 1.30, or with the LoadBalancerIPMode gate
		// off, drops the field: kube-proxy would then read the address as
		// ipMode VIP and capture its traffic on every node, HAProxy never
		// seeing it. Take the address back rather than leave that.
		r.ipModeDropped.Store(true)
		r.tell(svc, nil, EventSyncLoadBalancerFailed, ipModeDroppedMessage)
		published := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = nil
		return client.IgnoreNotFound(r.Client.Status().Patch(ctx, svc, client.MergeFrom(published)))
	}
	if len(orig.Status.LoadBalancer.Ingress) == 0 && len(ingress) > 0 {
		ips := make([]string, len(ingress))
		for i, in := range ingress {
			ips[i] = in.IP
		}
		r.Recorder.Eventf(svc, lb, corev1.EventTypeNormal, EventIPAllocated, "Allocate", "Assigned IP %s", strings.Join(ips, ", "))
		r.Recorder.Eventf(svc, lb, corev1.EventTypeNormal, EventEnsuredLoadBalancer, "Ensure", "Ensured load balancer")
	}
	return nil
}

const ipModeDroppedMessage = "the API server dropped status.loadBalancer.ingress[].ipMode (it needs Kubernetes 1.30 or the LoadBalancerIPMode feature gate): " +
	"the address is not published, since kube-proxy would capture its traffic on every node"

// dropped tells whether the ingress the API server stored lost the ipMode
// that was sent.
func dropped(sent, stored []corev1.LoadBalancerIngress) bool {
	for i, in := range sent {
		if in.IPMode != nil && (i >= len(stored) || stored[i].IPMode == nil) {
			return true
		}
	}
	return false
}

// tell records a Warning event on the Service, once per message, about
// related too when it is not nil.
func (r *ServiceReconciler) tell(svc *corev1.Service, related client.Object, reason, message string) {
	key := svc.Namespace + "/" + svc.Name + "\x00" + reason
	if last, ok := r.told.Load(key); ok && last.(string) == message {
		return
	}
	r.told.Store(key, message)
	r.Recorder.Eventf(svc, related, corev1.EventTypeWarning, reason, "Sync", "%s", message)
}

// forget drops what a Service was told, once it is gone.
func (r *ServiceReconciler) forget(key string) {
	r.told.Range(func(k, _ any) bool {
		if strings.HasPrefix(k.(string), key+"\x00") {
			r.told.Delete(k)
		}
		return true
	})
}

// controlledByService tells whether a LoadBalancer was written for a
// Service (its controller reference).
func controlledByService(lb *v1alpha1.LoadBalancer) bool {
	ref := metav1.GetControllerOf(lb)
	return ref != nil && ref.Kind == "Service" && ref.APIVersion == "v1"
}

// indexServiceClass indexes Services of type LoadBalancer by the
// hakeeper class that serves them.
const indexServiceClass = "hakeeper.serviceClass"

// SetupWithManager registers the controller: Services, the LoadBalancers
// they control, and what a refusal waits for: a class created or changed
// (a Service may come before its class, or before the cache has it), a
// namespace relabelled into the class's namespaceSelector.
func (r *ServiceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &corev1.Service{}, indexServiceClass, func(o client.Object) []string {
		if class := servicelb.ClassName(o.(*corev1.Service), r.DefaultClass); class != "" {
			return []string{class}
		}
		return nil
	}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&corev1.Service{}).
		Owns(&v1alpha1.LoadBalancer{}).
		Watches(&v1alpha1.LoadBalancerClass{}, handler.EnqueueRequestsFromMapFunc(r.servicesOf(func(o client.Object) []client.ListOption {
			return []client.ListOption{client.MatchingFields{indexServiceClass: o.GetName()}}
		}))).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.servicesOf(func(o client.Object) []client.ListOption {
			return []client.ListOption{client.InNamespace(o.GetName())}
		}))).
		Named("service").
		Complete(r)
}

// servicesOf maps an event to the Services hakeeper serves that the list
// options select.
func (r *ServiceReconciler) servicesOf(selector func(client.Object) []client.ListOption) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		var list corev1.ServiceList
		if err := r.Client.List(ctx, &list, selector(o)...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "Listing the Services an event concerns failed")
			return nil
		}
		var out []reconcile.Request
		for i := range list.Items {
			if servicelb.ClassName(&list.Items[i], r.DefaultClass) != "" {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return out
	}
}
