package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hakeeper/hakeeper/internal/configguard"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/haproxyapi"
	"github.com/hakeeper/hakeeper/internal/ifaddr"
	"github.com/hakeeper/hakeeper/internal/keepalivedctl"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/vrrpfilter"
)

func (a *Agent) syncLoop(ctx context.Context) {
	log := ctrl.LoggerFrom(ctx)
	tick := time.NewTicker(a.o.ResyncInterval)
	defer tick.Stop()
	for {
		if err := a.sync(ctx); err != nil {
			log.Error(err, "Sync failed")
		}
		select {
		case <-ctx.Done():
			return
		case <-a.trigger:
		case <-tick.C:
		}
	}
}

func configMapFrom(store interface {
	GetByKey(string) (any, bool, error)
}, namespace, name string) *corev1.ConfigMap {
	if store == nil {
		return nil
	}
	obj, ok, err := store.GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil
	}
	cm, _ := obj.(*corev1.ConfigMap)
	return cm
}

// sync applies the newest configs if they changed and pass the daemons'
// own checks. A rejected config is never applied: the last good one keeps
// running and the rejection is reported.
func (a *Agent) sync(ctx context.Context) error {
	hcm := configMapFrom(a.haproxy, a.o.Namespace, a.names.HAProxyConfigMap)
	kcm := configMapFrom(a.keep, a.o.Namespace, a.names.KeepalivedConfigMap)
	if hcm == nil || kcm == nil {
		return nil // the operator has not rendered yet
	}
	vrrp := contract.ParseVRRPRecord(kcm)
	// What the health loop acts on: it is woken when any of it changed,
	// rather than finding out at its next idle read.
	delay := int64(time.Duration(vrrp.PreemptDelaySeconds) * time.Second)
	inMaintenance := slices.Contains(vrrp.Maintenance, a.o.Node)
	vipsChanged := a.virtualIPs.Load() == nil || !slices.Equal(*a.virtualIPs.Load(), vrrp.VirtualIPs)
	delayChanged := a.preemptDelay.Swap(delay) != delay
	maintenanceChanged := a.maintenance.Swap(inMaintenance) != inMaintenance
	if vipsChanged {
		a.virtualIPs.Store(&vrrp.VirtualIPs)
	}
	if delayChanged || maintenanceChanged || vipsChanged {
		a.wakeHealth()
	}
	a.learnRole(ctx, vrrp.VirtualIPs)
	want := appliedConfig{
		haproxyCfg:     hcm.Data[contract.KeyHAProxyConfig],
		keepalivedConf: kcm.Data[a.o.Node+contract.KeepalivedKeySuffix],
		vrrpPeers:      string(vrrpfilter.FormatPeers(vrrp.Peers)),
	}
	if want.haproxyCfg == "" || want.keepalivedConf == "" || len(vrrp.Peers) == 0 {
		return nil // waiting for this node's keepalived.conf (the interface report)
	}
	if _, err := vrrpfilter.ParsePeers([]byte(want.vrrpPeers)); err != nil {
		err = fmt.Errorf("%s: VRRP peers: %w", contract.KeyVRRP, err)
		a.update(func(r *contract.NodeReport) { r.Message = err.Error() })
		return err
	}
	if err := json.Unmarshal([]byte(hcm.Data[contract.KeyServers]), &want.servers); err != nil {
		want.servers = contract.ServerSet{} // an older operator's ConfigMap: reload
	} else if err := want.servers.Validate(); err != nil {
		a.update(func(r *contract.NodeReport) { r.Message = err.Error() })
		return err
	}
	secrets := contract.ParseTLSSecrets(hcm)
	if err := contract.ValidateTLSSecrets(secrets); err != nil {
		a.update(func(r *contract.NodeReport) { r.Message = err.Error() })
		return err
	}
	a.watchSecrets(ctx, secrets)
	certs, unreadable := a.readCertificates(ctx, secrets)
	// A listener whose Secret cannot be read is left out on this node, and
	// said so; every other listener is served.
	unserved := ""
	if len(unreadable) > 0 {
		want.haproxyCfg = withoutListeners(want.haproxyCfg, slices.Sorted(maps.Keys(unreadable)))
		var notes []string
		for _, l := range slices.Sorted(maps.Keys(unreadable)) {
			notes = append(notes, fmt.Sprintf("listener %s is not served: %s", l, unreadable[l]))
		}
		unserved = strings.Join(notes, "; ")
	}
	want.certs, want.certsHash = certs, certsHash(certs)
	if !a.applied.unknown && a.applied.haproxyCfg == want.haproxyCfg && a.applied.sameKeepalived(want) && a.applied.certsHash == want.certsHash {
		// What runs is what is wanted: a rejection reported earlier (the
		// spec was reverted since) no longer holds.
		hash := contract.NodeConfigHash([]byte(want.haproxyCfg), []byte(want.keepalivedConf))
		a.update(func(r *contract.NodeReport) { r.ConfigHash, r.Message = hash, unserved })
		return nil
	}
	if a.refused.haproxyCfg == want.haproxyCfg && a.refused.certsHash == want.certsHash && a.applied.sameKeepalived(want) {
		// HAProxy refused this very config at reload: say so again, and
		// do not reload into the same failure every resync.
		a.update(func(r *contract.NodeReport) { r.Message = a.refused.message })
		return nil
	}
	if daemon, err := a.check(ctx, want); err != nil {
		ctrl.LoggerFrom(ctx).Info("Refusing a config the daemons reject; the last good one keeps serving", "error", err.Error())
		a.metrics.configRejections.WithLabelValues(daemon).Inc()
		a.update(func(r *contract.NodeReport) { r.Message = err.Error() })
		return nil
	}
	if err := a.apply(ctx, want); err != nil {
		var failed *reloadFailedError
		if errors.As(err, &failed) && !a.applied.unknown && a.applied.haproxyCfg != "" {
			// keepalived took its config; HAProxy runs the last good one.
			// The same config is not tried again until it changes.
			a.applied.keepalivedConf, a.applied.vrrpPeers = want.keepalivedConf, want.vrrpPeers
			a.refused = refusedConfig{haproxyCfg: want.haproxyCfg, certsHash: want.certsHash, message: err.Error()}
			if err := a.saveApplied(); err != nil {
				ctrl.LoggerFrom(ctx).Error(err, "Recording the applied config failed")
			}
		}
		a.update(func(r *contract.NodeReport) { r.Message = err.Error() })
		return err
	}
	a.refused = refusedConfig{}
	a.applied = want
	if err := a.saveApplied(); err != nil {
		// The next restart reloads instead of resuming: no harm done.
		ctrl.LoggerFrom(ctx).Error(err, "Recording the applied config failed")
	}
	hash := contract.NodeConfigHash([]byte(want.haproxyCfg), []byte(want.keepalivedConf))
	a.metrics.setConfigHash(hash)
	a.update(func(r *contract.NodeReport) { r.ConfigHash, r.Message = hash, unserved })
	return nil
}

// learnRole reads the node's role from the node itself the first time the
// virtual IPs are known, for the role loop (which keeps a role keepalived
// notified since).
func (a *Agent) learnRole(ctx context.Context, virtualIPs []string) {
	if a.roleLearned || len(virtualIPs) == 0 {
		return
	}
	a.roleLearned = true
	select {
	case a.learnedRole <- a.initialRole(a.iface, virtualIPs):
	case <-ctx.Done():
	}
}

// watchSecrets keeps one watch on each TLS Secret the config names, so a
// rotated certificate is applied at once rather than at the next resync.
func (a *Agent) watchSecrets(ctx context.Context, listeners map[string]string) {
	want := map[string]bool{}
	for _, secret := range listeners {
		want[secret] = true
	}
	for name, stop := range a.secretWatches {
		if !want[name] {
			stop()
			delete(a.secretWatches, name)
		}
	}
	for name := range want {
		if _, ok := a.secretWatches[name]; !ok {
			watchCtx, stop := context.WithCancel(ctx)
			a.secretWatches[name] = stop
			a.watchNamed(watchCtx, a.o.LoadBalancerNamespace, "secrets", name, &corev1.Secret{})
		}
	}
}

// readCertificates reads each TLS listener's Secret: tls.crt then tls.key,
// one PEM file as HAProxy wants it. unreadable says, per listener, why its
// Secret could not be used.
func (a *Agent) readCertificates(ctx context.Context, listeners map[string]string) (certs, unreadable map[string]string) {
	certs, unreadable = map[string]string{}, map[string]string{}
	for listener, secret := range listeners {
		s, err := a.client.CoreV1().Secrets(a.o.LoadBalancerNamespace).Get(ctx, secret, metav1.GetOptions{})
		if err != nil {
			unreadable[listener] = fmt.Sprintf("failed to read TLS Secret %s: %v", secret, err)
			continue
		}
		crt, key := s.Data[corev1.TLSCertKey], s.Data[corev1.TLSPrivateKeyKey]
		if len(crt) == 0 || len(key) == 0 {
			unreadable[listener] = fmt.Sprintf("TLS Secret %s lacks %s or %s", secret, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)
			continue
		}
		certs[listener] = strings.TrimSpace(string(crt)) + "\n" + strings.TrimSpace(string(key)) + "\n"
	}
	return certs, unreadable
}

// withoutListeners drops the frontend sections of these listeners from a
// rendered haproxy.cfg (nothing refers to a frontend, so the rest stands).
func withoutListeners(cfg string, listeners []string) string {
	drop := map[string]bool{}
	for _, l := range listeners {
		drop["frontend "+render.FrontendName(l)] = true
	}
	var out []string
	skipping := false
	for _, line := range strings.Split(cfg, "\n") {
		if line != "" && line[0] != ' ' && line[0] != '\t' && line[0] != '#' {
			skipping = drop[strings.TrimSpace(line)]
		}
		if !skipping {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// check refuses configs outside what hakeeper renders (configguard), then
// runs haproxy -c and keepalived --config-test on candidate files. The
// guard comes first: HAProxy runs a lua-load script even while checking.
// Certificates are written next (HAProxy opens them while checking); the
// running HAProxy keeps the ones it loaded until it reloads. daemon names
// whose config was refused.
func (a *Agent) check(ctx context.Context, want appliedConfig) (daemon string, err error) {
	if err := configguard.HAProxy(want.haproxyCfg, a.o.Paths.RunDir); err != nil {
		return "haproxy", err
	}
	if err := configguard.Keepalived(want.keepalivedConf, a.o.Paths.RunDir); err != nil {
		return "keepalived", err
	}
	if err := checkFileLimit(want.haproxyCfg, a.o.OpenFileLimit); err != nil {
		return "haproxy", err
	}
	if err := serversOnThisNode(want.servers, append(ifaddr.Own(a.iface), a.o.HostIP)); err != nil {
		return "haproxy", err
	}
	// A port another process holds on this node passes `haproxy -c` but
	// fails the reload, and while HAProxy tries, its old workers' listeners
	// stop accepting (measured in the lab: 2 s of refused connections on
	// the master). So the new bind addresses are tried here first; the
	// check after a failed reload stays for a port taken in between. Only
	// against a known running config: HAProxy's own sockets would
	// otherwise look taken.
	if a.applied.haproxyCfg != "" && !a.applied.unknown {
		if conflict := bindConflicts(a.applied.haproxyCfg, want.haproxyCfg); conflict != "" {
			return "haproxy", fmt.Errorf("haproxy.cfg not applied: %s; the last good config keeps serving", conflict)
		}
	}
	// Certificates are checked where HAProxy does not load them from: the
	// candidate config names the candidate copies. Only apply moves them to
	// the live directory, so a rejected rotation never reaches a restart.
	for listener, pem := range want.certs {
		if err := writeFileAtomic(a.o.Paths.CandidateCertificateFile(listener), []byte(pem), 0o600); err != nil {
			return "haproxy", err
		}
	}
	live, candidate := path.Dir(a.o.Paths.CertificateFile("x"))+"/", path.Dir(a.o.Paths.CandidateCertificateFile("x"))+"/"
	hcand := filepath.Join(a.o.Paths.HAProxyConfigDir(), ".candidate-"+contract.HAProxyConfigFile)
	kcand := filepath.Join(a.o.Paths.KeepalivedConfigDir(), ".candidate-"+contract.KeepalivedConfigFile)
	if err := writeFileAtomic(hcand, []byte(strings.ReplaceAll(want.haproxyCfg, live, candidate)), 0o644); err != nil {
		return "haproxy", err
	}
	if err := writeFileAtomic(kcand, []byte(want.keepalivedConf), 0o644); err != nil {
		return "keepalived", err
	}
	checkCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	// What the daemons already accepted needs no second check: an
	// unchanged keepalived.conf, and a haproxy.cfg whose only changes are
	// runtime servers' validated values (most endpoint changes). Each
	// check runs the daemon, 0.1 to 0.2 s on a busy node.
	known := a.applied.haproxyCfg != "" && !a.applied.unknown
	if !(known && want.certsHash == a.applied.certsHash && serversOnlyChange(a.applied.haproxyCfg, want.haproxyCfg, want.servers)) {
		if _, err := a.o.Checker.HAProxyConfig(checkCtx, hcand); err != nil {
			return "haproxy", err
		}
	}
	if !(known && want.keepalivedConf == a.applied.keepalivedConf) {
		if _, err := a.o.Checker.KeepalivedConfig(checkCtx, kcand); err != nil {
			return "keepalived", err
		}
	}
	return "", nil
}

// apply installs checked configs. Server changes go through the runtime
// API; anything else reloads HAProxy through its master socket. A reload
// HAProxy refuses puts the last good haproxy.cfg back on disk (so a later
// restart of HAProxy starts), still applies keepalived's config, and
// returns the *reloadFailedError.
func (a *Agent) apply(ctx context.Context, want appliedConfig) error {
	log := ctrl.LoggerFrom(ctx)
	p := a.o.Paths
	haproxyPath, keepalivedPath := p.HAProxyConfig(), p.KeepalivedConfig()
	var reloadErr error
	if want.haproxyCfg != a.applied.haproxyCfg || want.certsHash != a.applied.certsHash || a.applied.unknown {
		if err := a.installCertificates(want.certs); err != nil {
			return err
		}
		if err := writeFileAtomic(haproxyPath, []byte(want.haproxyCfg), 0o644); err != nil {
			return err
		}
		if a.applied.haproxyCfg != "" || a.applied.unknown { // HAProxy runs: change it live
			cmds, runtimeOK := contract.RuntimeCommands(a.applied.servers, want.servers)
			var err error
			switch {
			case runtimeOK && want.certsHash == a.applied.certsHash && !a.applied.unknown:
				log.Info("Applying server changes through the runtime API", "commands", len(cmds))
				if err = a.runtime(ctx, cmds); err != nil {
					log.Info("Runtime API failed; reloading instead", "error", err.Error())
					err = a.reloadHAProxy(ctx)
				} else {
					a.metrics.runtimeUpdates.Inc()
				}
			default:
				log.Info("Reloading HAProxy")
				err = a.reloadHAProxy(ctx)
			}
			var failed *reloadFailedError
			switch {
			case errors.As(err, &failed):
				failed.cause = bindConflicts(a.applied.haproxyCfg, want.haproxyCfg)
				if a.applied.haproxyCfg != "" {
					if err := writeFileAtomic(haproxyPath, []byte(a.applied.haproxyCfg), 0o644); err != nil {
						return errors.Join(failed, err)
					}
					if a.applied.certs != nil { // unknown after a restart: the new ones stay
						if err := a.installCertificates(a.applied.certs); err != nil {
							return errors.Join(failed, err)
						}
					}
				}
				log.Info("HAProxy refused to reload; the last good config keeps serving", "error", failed.Error())
				reloadErr = failed
			case err != nil:
				return err
			}
		}
	}
	if !a.applied.sameKeepalived(want) || a.applied.unknown {
		// The peers first: the supervisor writes the VRRP filter from
		// them when it reloads keepalived, and at its start.
		if err := writeFileAtomic(p.VRRPPeers(), []byte(want.vrrpPeers), 0o644); err != nil {
			return errors.Join(reloadErr, err)
		}
		if err := writeFileAtomic(keepalivedPath, []byte(want.keepalivedConf), 0o644); err != nil {
			return errors.Join(reloadErr, err)
		}
		if a.applied.keepalivedConf != "" || a.applied.unknown {
			ctlCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
			var err error
			if want.keepalivedConf == a.applied.keepalivedConf && !a.applied.unknown {
				// Only the nodes changed: the filter, not keepalived.
				log.Info("Asking keepalived's supervisor to write the VRRP filter for new peers")
				err = keepalivedctl.Filter(ctlCtx, p.KeepalivedControl())
			} else {
				log.Info("Asking keepalived's supervisor to reload")
				err = keepalivedctl.Reload(ctlCtx, p.KeepalivedControl())
			}
			cancel()
			if err != nil {
				return errors.Join(reloadErr, err)
			}
		}
	}
	return reloadErr
}

// installCertificates puts checked certificates where HAProxy loads them.
func (a *Agent) installCertificates(certs map[string]string) error {
	for listener, pem := range certs {
		if err := writeFileAtomic(a.o.Paths.CertificateFile(listener), []byte(pem), 0o600); err != nil {
			return err
		}
	}
	return nil
}

func (a *Agent) runtime(ctx context.Context, cmds []string) error {
	for _, cmd := range cmds {
		out, err := haproxyapi.Command(ctx, a.o.Paths.RuntimeSocket(), cmd)
		if err != nil {
			return err
		}
		if out = strings.TrimSpace(out); out != "" && !strings.Contains(out, "changed from") && !strings.HasPrefix(out, "No need") {
			return fmt.Errorf("%s: %s", cmd, out)
		}
	}
	return nil
}

// reloadHAProxy saves server states (health, runtime changes) for the new
// process, asks the master to reload, and verifies that it did: the
// master's `show proc` counts the reload, and a failed one (a port in use,
// file descriptors the node cannot give, anything `haproxy -c` does not
// try) as failed, the old workers serving on. The master socket refuses
// connections for a moment after a reload, so connecting is retried.
func (a *Agent) reloadHAProxy(ctx context.Context) error {
	p := a.o.Paths
	if state, err := haproxyapi.Command(ctx, p.RuntimeSocket(), "show servers state"); err == nil {
		_ = writeFileAtomic(p.ServerState(), []byte(state), 0o600)
	}
	before, known := a.masterState(ctx)
	a.reloadedAt.Store(time.Now().UnixNano())
	a.metrics.reloads.Inc()
	if _, err := haproxyapi.MasterCommand(ctx, p.MasterSocket(), "reload"); err != nil {
		a.metrics.reloadFailures.Inc()
		return fmt.Errorf("failed to reload HAProxy: %w", err)
	}
	if !known {
		return nil // an HAProxy without the counters: nothing to verify against
	}
	deadline := time.Now().Add(reloadVerifyTimeout)
	for {
		after, ok := a.masterState(ctx)
		switch {
		case ok && after.Failed > before.Failed:
			a.metrics.reloadFailures.Inc()
			return &reloadFailedError{before: before, after: after}
		case ok && after.Reloads > before.Reloads:
			return nil
		case time.Now().After(deadline):
			a.metrics.reloadFailures.Inc()
			return fmt.Errorf("failed to reload HAProxy: its master did not count the reload within %v", reloadVerifyTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// reloadVerifyTimeout bounds the wait for the master to count a reload:
// parsing and starting the new workers takes milliseconds; a config with
// thousands of servers or certificates, seconds.
const reloadVerifyTimeout = 15 * time.Second

func (a *Agent) masterState(ctx context.Context) (haproxyapi.MasterState, bool) {
	out, err := haproxyapi.MasterCommand(ctx, a.o.Paths.MasterSocket(), "show proc")
	if err != nil {
		return haproxyapi.MasterState{}, false
	}
	return haproxyapi.ParseShowProc(out)
}

// reloadFailedError: the master refused the new config; its old workers
// serve the last good one.
type reloadFailedError struct {
	before, after haproxyapi.MasterState
	cause         string // what the agent found wrong, if anything
}

func (e *reloadFailedError) Error() string {
	msg := fmt.Sprintf("HAProxy did not start the new config: its master counts the reload as failed (show proc: failed %d -> %d); "+
		"the last good config keeps serving and is back on disk", e.before.Failed, e.after.Failed)
	if e.cause != "" {
		msg += "; " + e.cause
	}
	return msg + " (HAProxy's own message is in the haproxy container's log)"
}

// sameKeepalived tells whether want's keepalived side (its config and
// its VRRP peers) is what c runs.
func (c appliedConfig) sameKeepalived(want appliedConfig) bool {
	return c.keepalivedConf == want.keepalivedConf && c.vrrpPeers == want.vrrpPeers
}

// writeFileAtomic replaces path in one step, so a reader never sees half a
// file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return err
	}
	if err := os.Chmod(tmp, mode); err != nil {
		return err
	}
	return errors.Join(os.Rename(tmp, path))
}
