package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/hakeeper/hakeeper/internal/testing/testenv"
)

// HelmRelease is the release name the lab installs hakeeper under.
const HelmRelease = "hakeeper"

// HelmBinary is the helm the lab runs: $HELM (the Makefile builds it and
// exports the path).
func HelmBinary() (string, error) {
	bin := os.Getenv("HELM")
	if bin == "" {
		bin = filepath.Join(testenv.RepoRoot(), "bin", "helm")
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("no helm at %s (make test builds it and sets $HELM): %w", bin, err)
	}
	return bin, nil
}

// Helm runs helm as the lab's admin, in the operator's namespace.
func (l *Lab) Helm(ctx context.Context, args ...string) ([]byte, error) {
	bin, err := HelmBinary()
	if err != nil {
		return nil, err
	}
	all := append([]string{"--kubeconfig=" + l.AdminKubeconfig, "--namespace=" + OperatorNamespace}, args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	// Helm's caches and repository config stay in the lab's folder.
	home := filepath.Join(l.dir, "helm")
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config", "HELM_DATA_HOME="+home+"/data")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("helm %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out, nil
}

// HelmValues are the values the lab installs the chart with: the built
// images (imported into every node's containerd, so never pulled) and
// the operator's namespace with its PodSecurity labels. The tags are
// strings whatever they look like (--set-string: a tag of digits would
// otherwise be a number).
func HelmValues(manager, dataPlane string) []string {
	var values []string
	for key, ref := range map[string]string{"manager": manager, "dataPlane": dataPlane} {
		repository, tag, digest := splitImage(ref)
		values = append(values, "--set-string", "image."+key+".repository="+repository,
			"--set-string", "image."+key+".tag="+tag, "--set-string", "image."+key+".digest="+digest)
	}
	return append(values, "--set", "image.pullPolicy=IfNotPresent")
}

// splitImage splits an image reference into repository, tag and digest:
// the digest after "@", the tag after the last colon of the rest that
// follows its last slash (a registry's port is no tag).
func splitImage(ref string) (repository, tag, digest string) {
	ref, digest, _ = strings.Cut(ref, "@")
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, "", digest
	}
	return ref[:i], ref[i+1:], digest
}

// HelmInstall installs (or, with upgrade, upgrades) the chart from
// charts/hakeeper with the given images and waits for the manager's
// rollout. The namespace is created and labelled first, as the chart's
// NOTES ask when it does not create it: Helm keeps its release record
// there, so it must exist before the release does.
func (l *Lab) HelmInstall(ctx context.Context, upgrade bool, manager, dataPlane string, extra ...string) ([]byte, error) {
	if !upgrade {
		if err := l.ensureOperatorNamespace(ctx); err != nil {
			return nil, err
		}
	}
	verb := "install"
	if upgrade {
		verb = "upgrade"
	}
	args := append([]string{verb, HelmRelease, filepath.Join(testenv.RepoRoot(), "charts", "hakeeper")}, HelmValues(manager, dataPlane)...)
	out, err := l.Helm(ctx, append(args, extra...)...)
	if err != nil {
		return out, err
	}
	return out, l.WaitDeployment(ctx, OperatorNamespace, ManagerDeployment, 3*time.Minute)
}

// ensureOperatorNamespace creates the operator's namespace with the
// PodSecurity levels config/manager's Namespace has.
func (l *Lab) ensureOperatorNamespace(ctx context.Context) error {
	if _, err := l.Kubectl(ctx, "get", "namespace", OperatorNamespace); err != nil {
		if _, err := l.Kubectl(ctx, "create", "namespace", OperatorNamespace); err != nil {
			return err
		}
	}
	_, err := l.Kubectl(ctx, "label", "--overwrite", "namespace", OperatorNamespace,
		"pod-security.kubernetes.io/enforce=privileged", "pod-security.kubernetes.io/audit=restricted")
	return err
}

// TagImages gives the built manager and data-plane images another tag in
// every node's containerd, as a registry would serve a new release: an
// upgrade to these tags changes the pods' specs and rolls them.
func (l *Lab) TagImages(ctx context.Context, tag string) (manager, dataPlane string, err error) {
	retag := func(image string) string {
		name, _, _ := strings.Cut(image, ":")
		return name + ":" + tag
	}
	manager, dataPlane = retag(l.images.Manager), retag(l.images.DataPlane)
	for _, n := range l.nodes {
		for src, dst := range map[string]string{l.images.Manager: manager, l.images.DataPlane: dataPlane} {
			out, err := exec.CommandContext(ctx, "ctr", "--address", n.socket(), "-n", "k8s.io", "images", "tag", "--force", src, dst).CombinedOutput()
			if err != nil {
				return "", "", fmt.Errorf("tagging %s as %s on %s: %v: %s", src, dst, n.name, err, out)
			}
		}
	}
	return manager, dataPlane, nil
}

// Images returns the images the lab runs.
func (l *Lab) Images() Images { return l.images }
