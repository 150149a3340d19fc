package agent

import (
	"bufio"
	"context"
	"os"
	"strings"
	"syscall"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

func makeFIFO(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.Mode()&os.ModeNamedPipe != 0 {
		return nil
	}
	_ = os.Remove(path)
	return syscall.Mkfifo(path, 0o600)
}

// vrrpLoop reads keepalived's notify FIFO. Lines look like
// `INSTANCE "hk_ns_name" MASTER 150`; the state becomes the node's role.
func (a *Agent) vrrpLoop(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	// Opened read-write so the open does not block waiting for keepalived
	// and reads do not see end-of-file when keepalived restarts.
	f, err := os.OpenFile(a.o.Paths.NotifyFIFO(), os.O_RDWR, 0)
	if err != nil {
		log.Error(err, "Opening keepalived's notify FIFO failed")
		return
	}
	go func() { <-ctx.Done(); _ = f.Close() }()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if role, ok := parseNotify(scanner.Text()); ok {
			log.Info("VRRP state changed", "role", role)
			a.update(func(r *contract.NodeReport) {
				if r.Role != role {
					r.Transitions++
					a.metrics.vrrpTransitions.Inc()
				}
				r.Role = role
			})
			a.metrics.setVRRPState(role)
		}
	}
}

func parseNotify(line string) (v1alpha1.VRRPRole, bool) {
	fields := strings.Fields(line)
	if len(fields) < 3 || fields[0] != "INSTANCE" {
		return "", false
	}
	switch fields[2] {
	case "MASTER":
		return v1alpha1.VRRPRoleMaster, true
	case "BACKUP":
		return v1alpha1.VRRPRoleBackup, true
	case "FAULT", "STOP":
		return v1alpha1.VRRPRoleFault, true
	}
	return "", false
}
