package lab

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
)

// WaitActive waits until a LoadBalancer's status is Ready with node as its
// active node, polling every 100 ms for at most timeout. The error shows
// the last status seen.
func (l *Lab) WaitActive(ctx context.Context, lb *v1alpha1.LoadBalancer, node string, timeout time.Duration) error {
	err := Poll(ctx, 100*time.Millisecond, timeout, func() error {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		ready := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerReadyCondition)
		if got.Status.ActiveNode == node && ready != nil && ready.Status == metav1.ConditionTrue {
			return nil
		}
		return fmt.Errorf("active %q, ready %+v, nodes %+v", got.Status.ActiveNode, ready, got.Status.Nodes)
	})
	if err != nil {
		return fmt.Errorf("%s never became the ready active node of %s: %w", node, lb.Name, err)
	}
	return nil
}

// Transitions reads every node's count of VRRP state changes from the
// agents' reports (the status follows them).
func (l *Lab) Transitions(ctx context.Context, lb *v1alpha1.LoadBalancer) (map[string]int64, error) {
	cm := &corev1.ConfigMap{}
	key := client.ObjectKey{Namespace: OperatorNamespace, Name: desired.NamesFor(lb).ReportConfigMap}
	if err := l.Client.Get(ctx, key, cm); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for node, r := range contract.ParseReports(cm.Data) {
		out[node] = r.Transitions
	}
	return out, nil
}

// vrrpEvent matches the log lines that explain a VRRP transition:
// keepalived's state changes, priorities and adverts received, tracked
// files; the agent's health, servers, maintenance and hold changes.
var vrrpEvent = regexp.MustCompile(`(?i)state|priority|track|fault|health|servers|maintenance|hold|reload`)

// VRRPEvents are those lines from every node's keepalived and agent logged
// since, each prefixed with its node and container: whether a transition
// came from missed adverts or from a node's own tracked files. Read
// through the API server, as `kubectl logs --timestamps` does.
func (l *Lab) VRRPEvents(ctx context.Context, lb *v1alpha1.LoadBalancer, since time.Time) (string, error) {
	pods, err := l.Pods(ctx, OperatorNamespace, desired.DataPlaneSelector(lb))
	if err != nil {
		return "", err
	}
	var out strings.Builder
	restarts, err := l.containerRestarts(ctx, pods, since)
	out.WriteString(restarts)
	if err != nil {
		return out.String(), err
	}
	for _, p := range pods {
		for _, c := range []string{desired.ContainerKeepalived, desired.ContainerAgent} {
			// --since-time has a resolution of seconds: later lines are
			// dropped by their own timestamps.
			logs, err := l.Kubectl(ctx, "logs", "-n", OperatorNamespace, p.Name, "-c", c, "--timestamps",
				"--since-time="+since.UTC().Format(time.RFC3339))
			if err != nil {
				return out.String(), err
			}
			for _, line := range strings.Split(string(logs), "\n") {
				stamp, _, _ := strings.Cut(line, " ")
				if at, err := time.Parse(time.RFC3339Nano, stamp); err != nil || at.Before(since) {
					continue
				}
				if vrrpEvent.MatchString(line) {
					fmt.Fprintf(&out, "%s %s: %s\n", p.Spec.NodeName, c, line)
				}
			}
		}
	}
	return out.String(), nil
}

// ContainerRestarts says which of a LoadBalancer's data-plane containers
// restarted and why, as containerRestarts does.
func (l *Lab) ContainerRestarts(ctx context.Context, lb *v1alpha1.LoadBalancer, since time.Time) (string, error) {
	pods, err := l.Pods(ctx, OperatorNamespace, desired.DataPlaneSelector(lb))
	if err != nil {
		return "", err
	}
	return l.containerRestarts(ctx, pods, since)
}

// containerRestarts says which of the pods' containers restarted, how each
// last ended and what its previous instance logged last, and the kubelet's
// events about the pods since then (a failed liveness probe, a kill, a
// back-off): a tracked file set by a HAProxy that exited, or a keepalived
// that came back without the VIPs, shows no cause in the logs of the
// instance running now.
func (l *Lab) containerRestarts(ctx context.Context, pods []corev1.Pod, since time.Time) (string, error) {
	var out strings.Builder
	names := map[string]string{}
	for _, p := range pods {
		names[p.Name] = p.Spec.NodeName
		for _, s := range p.Status.ContainerStatuses {
			if s.RestartCount == 0 {
				continue
			}
			fmt.Fprintf(&out, "%s %s: restarted %d times", p.Spec.NodeName, s.Name, s.RestartCount)
			if t := s.LastTerminationState.Terminated; t != nil {
				fmt.Fprintf(&out, "; last ended %s: %s, exit code %d, signal %d", t.FinishedAt.UTC().Format(time.RFC3339), t.Reason, t.ExitCode, t.Signal)
			}
			out.WriteString("\n")
			logs, err := l.Kubectl(ctx, "logs", "-n", OperatorNamespace, p.Name, "-c", s.Name, "--previous", "--timestamps", "--tail=10")
			if err != nil {
				fmt.Fprintf(&out, "%s %s: no previous log: %v\n", p.Spec.NodeName, s.Name, err)
				continue
			}
			for _, line := range strings.Split(strings.TrimSpace(string(logs)), "\n") {
				fmt.Fprintf(&out, "%s %s (previous): %s\n", p.Spec.NodeName, s.Name, line)
			}
		}
	}
	var events corev1.EventList
	if err := l.Client.List(ctx, &events, client.InNamespace(OperatorNamespace)); err != nil {
		return out.String(), err
	}
	for _, e := range events.Items {
		node, ours := names[e.InvolvedObject.Name]
		if !ours || e.InvolvedObject.Kind != "Pod" || e.Type == corev1.EventTypeNormal && e.Reason != "Killing" {
			continue
		}
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if last.Before(since) {
			continue
		}
		fmt.Fprintf(&out, "%s kubelet: %s %s %s (%d times): %s\n", node, last.UTC().Format(time.RFC3339), e.Type, e.Reason, max(e.Count, 1), e.Message)
	}
	return out.String(), nil
}

// proxyTrouble matches what HAProxy's tcplog and httplog print for a
// session that did not end cleanly: its two-letter termination state is
// not "--" (e.g. "SC": the server refused the connection, "sC": the
// connect timed out, "CD": the client went away mid-transfer).
var proxyTrouble = regexp.MustCompile(` (?:[A-Za-z][A-Za-z-]|-[A-Za-z])(?:[-A-Za-z]{2})? \d+/\d+/\d+/\d+/\d+ `)

// ProxyTrouble are the sessions every node's HAProxy logged since that did
// not end cleanly, each prefixed with its node: which server a lost
// request went to and how it failed.
func (l *Lab) ProxyTrouble(ctx context.Context, lb *v1alpha1.LoadBalancer, since time.Time) (string, error) {
	pods, err := l.Pods(ctx, OperatorNamespace, desired.DataPlaneSelector(lb))
	if err != nil {
		return "", err
	}
	var out strings.Builder
	for _, p := range pods {
		logs, err := l.Kubectl(ctx, "logs", "-n", OperatorNamespace, p.Name, "-c", desired.ContainerHAProxy, "--timestamps",
			"--since-time="+since.UTC().Format(time.RFC3339))
		if err != nil {
			return out.String(), err
		}
		for _, line := range strings.Split(string(logs), "\n") {
			if proxyTrouble.MatchString(line) {
				fmt.Fprintf(&out, "%s: %s\n", p.Spec.NodeName, line)
			}
		}
	}
	return out.String(), nil
}

// stateChange matches keepalived's own line for a VRRP state change.
var stateChange = regexp.MustCompile(`Entering (MASTER|BACKUP|FAULT|STOP) STATE`)

// StateChanges are the VRRP state changes every node's keepalived logged
// since, each prefixed with its node: keepalived's own word, read as it
// logs it, where the agents' reports (written a moment later) could still
// show the counts from before a change.
func (l *Lab) StateChanges(ctx context.Context, lb *v1alpha1.LoadBalancer, since time.Time) ([]string, error) {
	pods, err := l.Pods(ctx, OperatorNamespace, desired.DataPlaneSelector(lb))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range pods {
		logs, err := l.Kubectl(ctx, "logs", "-n", OperatorNamespace, p.Name, "-c", desired.ContainerKeepalived, "--timestamps",
			"--since-time="+since.UTC().Format(time.RFC3339))
		if err != nil {
			return out, err
		}
		for _, line := range strings.Split(string(logs), "\n") {
			stamp, _, _ := strings.Cut(line, " ")
			if at, err := time.Parse(time.RFC3339Nano, stamp); err == nil && !at.Before(since) && stateChange.MatchString(line) {
				out = append(out, p.Spec.NodeName+": "+line)
			}
		}
	}
	return out, nil
}
