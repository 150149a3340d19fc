package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/ifaddr"
	"github.com/hakeeper/hakeeper/internal/keepalivedctl"
)

// An agent restarts (a rollout of the agent alone, an OOM kill, node
// pressure) while HAProxy and keepalived keep running in the same pod,
// their run directory (a tmpfs) intact. What the agent does on the way up
// must not move a healthy VIP: it resumes from what the daemons run now
// rather than starting over.

// appliedFile records what the daemons run, after every apply: the
// configs, the servers as data (the runtime API's baseline) and a hash of
// the certificates (never the keys themselves).
const appliedFile = "applied.json"

type appliedRecord struct {
	HAProxyConfig    string             `json:"haproxyConfig"`
	KeepalivedConfig string             `json:"keepalivedConfig"`
	VRRPPeers        string             `json:"vrrpPeers"`
	Servers          contract.ServerSet `json:"servers"`
	CertsHash        string             `json:"certsHash"`
}

// certsHash identifies a set of certificates (listener -> PEM).
func certsHash(certs map[string]string) string {
	if len(certs) == 0 {
		return ""
	}
	keys := make([]string, 0, len(certs))
	for k := range certs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(certs[k]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (a *Agent) saveApplied() error {
	data, err := json.Marshal(appliedRecord{HAProxyConfig: a.applied.haproxyCfg, KeepalivedConfig: a.applied.keepalivedConf,
		VRRPPeers: a.applied.vrrpPeers, Servers: a.applied.servers, CertsHash: a.applied.certsHash})
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(a.o.Paths.Agent(), appliedFile), data, 0o600)
}

// resume learns what runs before anything is written. With a record, the
// agent knows the running configs and the first sync changes them only if
// they differ, through the runtime API or a reload as usual. Without one
// but with HAProxy answering on its master socket (an agent that died
// between writing the files and the record), what runs is unknown: the
// first sync reloads HAProxy and signals keepalived, which costs nothing
// and makes them run what the agent reports.
func (a *Agent) resume(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	data, err := os.ReadFile(filepath.Join(a.o.Paths.Agent(), appliedFile))
	var rec appliedRecord
	if err == nil && json.Unmarshal(data, &rec) == nil && rec.HAProxyConfig != "" && rec.KeepalivedConfig != "" {
		a.applied = appliedConfig{haproxyCfg: rec.HAProxyConfig, keepalivedConf: rec.KeepalivedConfig, vrrpPeers: rec.VRRPPeers,
			servers: rec.Servers, certsHash: rec.CertsHash}
		hash := contract.NodeConfigHash([]byte(rec.HAProxyConfig), []byte(rec.KeepalivedConfig))
		a.metrics.setConfigHash(hash)
		a.update(func(r *contract.NodeReport) { r.ConfigHash = hash })
		log.Info("Resuming: the daemons run the recorded config", "hash", hash)
		return
	}
	probeCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := haproxyapi.MasterCommand(probeCtx, a.o.Paths.MasterSocket(), "show proc"); err == nil {
		a.applied.unknown = true
		log.Info("Resuming without a record of what HAProxy runs: the first sync reloads it")
	}
}

// initialRole is the VRRP role keepalived holds now, learnt without its
// notifications (they went to nobody while the agent was down): Unknown
// when keepalived does not run (the pod is starting), FAULT when the
// health file is set, MASTER when this node's interface holds the first
// virtual IP, BACKUP otherwise.
func (a *Agent) initialRole(iface string, virtualIPs []string) v1alpha1.VRRPRole {
	if !a.keepalivedRuns() {
		return v1alpha1.VRRPRoleUnknown
	}
	if data, err := os.ReadFile(a.o.Paths.TrackFile()); err == nil && strings.TrimSpace(string(data)) == "1" {
		return v1alpha1.VRRPRoleFault
	}
	if len(virtualIPs) == 0 {
		return v1alpha1.VRRPRoleUnknown
	}
	if len(ifaddr.Held(iface, virtualIPs[:1])) == 1 {
		return v1alpha1.VRRPRoleMaster
	}
	return v1alpha1.VRRPRoleBackup
}

func (a *Agent) keepalivedRuns() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return keepalivedctl.Running(ctx, a.o.Paths.KeepalivedControl())
}
