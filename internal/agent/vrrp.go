package agent

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

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

// roleSource is where a role comes from.
type roleSource int

const (
	// notified: keepalived's notify FIFO said so.
	notified roleSource = iota
	// learned: read from the node (initialRole) once the virtual IPs are
	// known: keepalived's notifications went to nobody while no agent ran.
	learned
	// keepalivedGone: keepalived no longer runs (killed, crashed,
	// restarting); it sends no notification, and its last word (often
	// MASTER) would stay in status for good.
	keepalivedGone
)

// roleEvent is something that may change the node's VRRP role.
type roleEvent struct {
	source roleSource
	role   v1alpha1.VRRPRole
}

// nextRole is the role machine: the role after e, and whether that is a
// VRRP transition to count. Only keepalived's own word counts; a learned
// role fills in an unknown one only, and a keepalived that is gone makes
// the role unknown.
func nextRole(current v1alpha1.VRRPRole, e roleEvent) (v1alpha1.VRRPRole, bool) {
	unknown := current == v1alpha1.VRRPRoleUnknown || current == ""
	switch e.source {
	case notified:
		return e.role, e.role != current
	case learned:
		if unknown && e.role != v1alpha1.VRRPRoleUnknown {
			return e.role, false
		}
	case keepalivedGone:
		if !unknown {
			return v1alpha1.VRRPRoleUnknown, false
		}
	}
	return current, false
}

// roleLoop owns the node's VRRP role: it alone writes it, from
// keepalived's notify FIFO (lines like `INSTANCE "hk_ns_name" MASTER 150`),
// the role the sync loop learns from the node, and keepalived's
// supervisor, asked every idle interval whether keepalived runs. It fails
// when the FIFO cannot be read: without it the role is blind, and the
// process ends so the kubelet restarts it.
func (a *Agent) roleLoop(ctx context.Context) error {
	log := ctrl.LoggerFrom(ctx)
	// Opened read-write so the open does not block waiting for keepalived
	// and reads do not see end-of-file when keepalived restarts.
	f, err := os.OpenFile(a.o.Paths.NotifyFIFO(), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("opening keepalived's notify FIFO: %w", err)
	}
	lines := make(chan string)
	readErr := make(chan error, 1)
	go func() {
		scanner := bufio.NewScanner(f)
		for scanner.Scan() {
			select {
			case lines <- scanner.Text():
			case <-ctx.Done():
				return
			}
		}
		readErr <- scanner.Err()
	}()
	defer f.Close() // ends the reader
	tick := time.NewTicker(a.o.IdleHealthInterval)
	defer tick.Stop()
	for {
		var e roleEvent
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("reading keepalived's notify FIFO: %v", err)
		case line := <-lines:
			role, ok := parseNotify(line)
			if !ok {
				continue
			}
			log.Info("VRRP state changed", "role", role)
			e = roleEvent{source: notified, role: role}
		case role := <-a.learnedRole:
			e = roleEvent{source: learned, role: role}
		case <-tick.C:
			if a.keepalivedRuns() {
				continue
			}
			e = roleEvent{source: keepalivedGone}
		}
		a.update(func(r *contract.NodeReport) {
			role, transition := nextRole(r.Role, e)
			if role == r.Role {
				return
			}
			if e.source == keepalivedGone {
				log.Info("keepalived is not running: its role is no longer known", "was", r.Role)
			}
			if transition {
				r.Transitions++
				a.metrics.vrrpTransitions.Inc()
			}
			r.Role = role
			a.metrics.setVRRPState(role)
		})
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
