package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// fieldManager owns the agents' keys in the report ConfigMap.
const fieldManager = contract.AgentFieldManager

// reportLoop writes the node's report whenever it changed, at most every
// 200 ms, so a burst of health changes makes one write.
func (a *Agent) reportLoop(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.changed:
		}
		if err := a.publish(ctx); err != nil {
			log.Info("Reporting failed; retrying", "error", err.Error())
			select {
			case a.changed <- struct{}{}:
			default:
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (a *Agent) publish(ctx context.Context) error {
	data, err := json.Marshal(a.snapshot())
	if err != nil {
		return err
	}
	if string(data) == a.reported {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"data": map[string]string{a.o.Node: string(data)}})
	if err != nil {
		return err
	}
	_, err = a.client.CoreV1().ConfigMaps(a.o.Namespace).Patch(ctx, a.names.ReportConfigMap, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("failed to write the report: %w", err)
	}
	a.reported = string(data)
	return nil
}
