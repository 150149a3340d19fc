package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// hakeeperLB is hakeeper's side of the comparison: one LoadBalancer on the
// three lab nodes with its defaults (VRRPv3, 50 ms adverts), node-a master
// and node-b first backup as in the pairs, serving the same two backends.
type hakeeperLB struct {
	l  *lab.Lab
	lb *v1alpha1.LoadBalancer
	// advertMS is the advert interval the LoadBalancer runs with.
	advertMS int
}

func newHakeeper(l *lab.Lab) *hakeeperLB {
	return &hakeeperLB{l: l, advertMS: v1alpha1.DefaultAdvertIntervalMilliseconds, lb: &v1alpha1.LoadBalancer{
		ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"},
		Spec: v1alpha1.LoadBalancerSpec{
			VirtualIPs: []string{lab.Prefix + "100"},
			VRRP: v1alpha1.VRRPSpec{Priorities: []v1alpha1.NodePriority{{Node: lab.NodeName(0), Priority: 150},
				{Node: lab.NodeName(1), Priority: 100}, {Node: lab.NodeName(2), Priority: 50}}},
			// The sandbox caps open files at 20000.
			HAProxy:   v1alpha1.HAProxySpec{MaxConnections: ptr.To(int32(2000))},
			Listeners: []v1alpha1.Listener{{Name: "http", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"}},
			Backends: []v1alpha1.Backend{{Name: "web", Servers: []v1alpha1.Server{
				{Name: "b1", Address: lab.BackendAddr(0), Port: lab.BackendPort},
				{Name: "b2", Address: lab.BackendAddr(1), Port: lab.BackendPort},
			}}},
		},
	}}
}

func (h *hakeeperLB) name() string {
	return fmt.Sprintf("hakeeper (v3, advert %d ms, events)", h.advertMS)
}
func (h *hakeeperLB) url() string     { return "http://" + h.lb.Spec.VirtualIPs[0] + "/" }
func (h *hakeeperLB) address() string { return h.lb.Spec.VirtualIPs[0] }

func (h *hakeeperLB) start(ctx context.Context) error {
	if err := h.l.Client.Create(ctx, h.lb); err != nil {
		return err
	}
	return h.waitBack(ctx)
}

// killHAProxy kills node-a's HAProxy container, as a crash would.
func (h *hakeeperLB) killHAProxy(context.Context) error {
	return h.l.Kill(lab.NodeName(0), h.lb, desired.ContainerHAProxy)
}

// restoreHAProxy deletes node-a's pod, which the DaemonSet replaces: a
// fresh pod, so no run waits out the kubelet's restart back-off, which
// grows with every kill of the same container.
func (h *hakeeperLB) restoreHAProxy(ctx context.Context) error {
	pods, err := h.l.Pods(ctx, lab.OperatorNamespace, map[string]string{desired.LabelLoadBalancer: h.lb.Name})
	if err != nil {
		return err
	}
	for i := range pods {
		if pods[i].Spec.NodeName == lab.NodeName(0) {
			if err := h.l.Client.Delete(ctx, &pods[i]); client.IgnoreNotFound(err) != nil {
				return err
			}
		}
	}
	return h.waitBack(ctx)
}

func (h *hakeeperLB) waitBack(ctx context.Context) error {
	if err := waitUntil(ctx, 3*time.Minute, "hakeeper on node-a", func() bool {
		return h.l.HoldsVIP(lab.NodeName(0), h.address()) && !h.l.HoldsVIP(lab.NodeName(1), h.address()) && answers(h.l, h.url())
	}); err != nil {
		return err
	}
	// Every pod running again: the next run starts from a whole cluster.
	return h.l.WaitActive(ctx, h.lb, lab.NodeName(0), 3*time.Minute)
}

func (h *hakeeperLB) stop() {
	_ = h.l.Client.Delete(context.Background(), h.lb)
}

// logTail names where hakeeper's logs are: the kubelets keep them.
func (h *hakeeperLB) logTail(int) string {
	pods, err := h.l.Pods(context.Background(), lab.OperatorNamespace, map[string]string{desired.LabelLoadBalancer: h.lb.Name})
	if err != nil {
		return err.Error()
	}
	out := ""
	for _, p := range pods {
		out += fmt.Sprintf("pod %s on %s: %s\n", p.Name, p.Spec.NodeName, podState(p))
	}
	return out
}

func podState(p corev1.Pod) string {
	s := string(p.Status.Phase)
	for _, c := range p.Status.ContainerStatuses {
		s += fmt.Sprintf(" %s ready=%v restarts=%d", c.Name, c.Ready, c.RestartCount)
	}
	return s
}
