package lab

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// WaitActive waits until a LoadBalancer's status is Ready with node as its
// active node, polling every 100 ms for at most timeout. The error shows
// the last status seen.
func (l *Lab) WaitActive(ctx context.Context, lb *v1alpha1.LoadBalancer, node string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := &v1alpha1.LoadBalancer{}
		err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got)
		if err == nil {
			ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerReadyCondition)
			if got.Status.ActiveNode == node && ready != nil && ready.Status == metav1.ConditionTrue {
				return nil
			}
			err = fmt.Errorf("active %q, ready %+v, nodes %+v", got.Status.ActiveNode, ready, got.Status.Nodes)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never became the ready active node of %s: %w", node, lb.Name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
