package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/internal/desired"
)

// kubelet plays the kubelet of one lab node: it runs the containers of the
// pods the operator's DaemonSets place there, as processes in the node's
// network namespace, each in a private mount namespace where the pod's
// volumes are per-node folders.
type kubelet struct {
	lab  *Lab
	node string
	addr string
	ns   string
	dir  string

	mu   sync.Mutex
	pods map[string]*pod // by DaemonSet namespace/name
}

type pod struct {
	mu         sync.Mutex // guards containers
	name       string
	namespace  string
	generation int64
	dir        string
	stopped    bool
	containers []*container
}

// container is one running container process, restarted when it exits, as
// restartPolicy Always says.
type container struct {
	name    string
	argv    []string
	env     []string
	logPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	stopped bool
	exited  chan struct{}
	// down is how long the next restart waits (the restart back-off).
	down time.Duration
}

// restartBackoff is how long an exited container stays down unless a
// Kill says otherwise.
const restartBackoff = time.Second

// wrap turns a container's command into one that runs in the node's
// network namespace with the pod's volumes mounted. /run gets a private
// tmpfs so a volume under /var/run needs no folder on the host.
func (k *kubelet) wrap(p *pod, mounts []corev1.VolumeMount, argv []string) []string {
	var script strings.Builder
	script.WriteString("set -e\nmount -t tmpfs hakeeper-lab /run\n")
	for _, m := range mounts {
		src := filepath.Join(p.dir, m.Name)
		fmt.Fprintf(&script, "mkdir -p %q\nmount --bind %q %q\n", m.MountPath, src, m.MountPath)
	}
	script.WriteString("exec \"$@\"\n")
	return append([]string{"ip", "netns", "exec", k.ns, "unshare", "--mount", "--propagation", "private",
		"sh", "-c", script.String(), "sh"}, argv...)
}

// env fills a container's environment the way the kubelet does for the
// downward API.
func (k *kubelet) env(p *pod, c corev1.Container, kubeconfig string) ([]string, error) {
	out := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "KUBECONFIG=" + kubeconfig}
	for _, e := range c.Env {
		v := e.Value
		if e.ValueFrom != nil {
			if e.ValueFrom.FieldRef == nil {
				return nil, fmt.Errorf("container %s: only fieldRef env is supported in the lab", c.Name)
			}
			switch e.ValueFrom.FieldRef.FieldPath {
			case "spec.nodeName":
				v = k.node
			case "metadata.name":
				v = p.name
			case "metadata.namespace":
				v = p.namespace
			case "status.hostIP", "status.podIP":
				v = k.addr
			default:
				return nil, fmt.Errorf("container %s: fieldRef %s is not supported in the lab", c.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		}
		out = append(out, e.Name+"="+v)
	}
	return out, nil
}

// argv is the container's command, with the image's hakeeper binary
// replaced by the one under test.
func (k *kubelet) argv(c corev1.Container) []string {
	argv := append(append([]string{}, c.Command...), c.Args...)
	for i, a := range argv {
		if a == desired.Binary {
			argv[i] = k.lab.binary
		}
	}
	return argv
}

// sync makes the node run the pods of the DaemonSets that select it. Pods
// start in the background, each on its own, as with a real kubelet: a pod
// whose sidecar never becomes ready does not hold the others up.
func (k *kubelet) sync(ctx context.Context, sets []appsv1.DaemonSet, node *corev1.Node) error {
	want := map[string]*appsv1.DaemonSet{}
	for i := range sets {
		ds := &sets[i]
		if labels.SelectorFromSet(ds.Spec.Template.Spec.NodeSelector).Matches(labels.Set(node.Labels)) {
			want[ds.Namespace+"/"+ds.Name] = ds
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for key, p := range k.pods {
		if ds, ok := want[key]; !ok || ds.Generation != p.generation {
			go k.stopPod(p)
			delete(k.pods, key)
		}
	}
	for key, ds := range want {
		if _, ok := k.pods[key]; ok {
			continue
		}
		p := k.newPod(ds)
		k.pods[key] = p
		go func() {
			if err := k.startPod(ctx, ds, p); err != nil {
				fmt.Fprintf(os.Stderr, "lab kubelet %s: %v\n", k.node, err)
				k.mu.Lock()
				if k.pods[key] == p {
					delete(k.pods, key) // retried on the next sync
				}
				k.mu.Unlock()
			}
		}()
	}
	return nil
}

func (k *kubelet) newPod(ds *appsv1.DaemonSet) *pod {
	return &pod{name: ds.Name + "-" + k.node, namespace: ds.Namespace, generation: ds.Generation, dir: filepath.Join(k.dir, ds.Namespace, ds.Name)}
}

// startPod registers the Pod in the API (so the cluster sees it) and runs
// its containers: sidecar init containers first, the others once the
// sidecars' startup probes pass.
func (k *kubelet) startPod(ctx context.Context, ds *appsv1.DaemonSet, p *pod) error {
	spec := ds.Spec.Template.Spec
	for _, v := range spec.Volumes {
		if err := os.MkdirAll(filepath.Join(p.dir, v.Name), 0o700); err != nil {
			return err
		}
	}
	if err := k.registerPod(ctx, ds, p); err != nil {
		return err
	}
	kubeconfig, err := k.lab.agentKubeconfig(ctx, ds.Namespace, spec.ServiceAccountName, p.dir)
	if err != nil {
		return err
	}
	for _, c := range spec.InitContainers {
		if c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			return fmt.Errorf("init container %s: only sidecars are supported in the lab", c.Name)
		}
		if err := k.startContainer(p, c, kubeconfig); err != nil {
			return err
		}
		if err := k.waitStartup(ctx, p, c); err != nil {
			k.stopPod(p)
			return err
		}
	}
	for _, c := range spec.Containers {
		if err := k.startContainer(p, c, kubeconfig); err != nil {
			k.stopPod(p)
			return err
		}
	}
	return nil
}

func (k *kubelet) registerPod(ctx context.Context, ds *appsv1.DaemonSet, p *pod) error {
	c := k.lab.Client
	obj := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: p.name, Namespace: p.namespace, Labels: ds.Spec.Template.Labels, Annotations: ds.Spec.Template.Annotations,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(ds, appsv1.SchemeGroupVersion.WithKind("DaemonSet"))},
		},
		Spec: *ds.Spec.Template.Spec.DeepCopy(),
	}
	obj.Spec.NodeName = k.node
	// No kubelet confirms a graceful deletion here: delete at once.
	_ = c.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: p.name, Namespace: p.namespace}}, client.GracePeriodSeconds(0))
	var err error
	for range 50 { // a deleted pod with the same name may linger briefly
		if err = c.Create(ctx, obj); !apierrors.IsAlreadyExists(err) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("failed to create pod %s: %w", p.name, err)
	}
	obj.Status = corev1.PodStatus{Phase: corev1.PodRunning, HostIP: k.addr, PodIP: k.addr}
	return c.Status().Update(ctx, obj)
}

func (k *kubelet) startContainer(p *pod, c corev1.Container, kubeconfig string) error {
	env, err := k.env(p, c, kubeconfig)
	if err != nil {
		return err
	}
	ctr := &container{
		name:    c.Name,
		argv:    k.wrap(p, c.VolumeMounts, k.argv(c)),
		env:     env,
		logPath: filepath.Join(p.dir, c.Name+".log"),
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return fmt.Errorf("pod %s was stopped while starting", p.name)
	}
	if err := ctr.start(); err != nil {
		return err
	}
	p.containers = append(p.containers, ctr)
	return nil
}

// waitStartup runs the container's startup probe, as the kubelet would,
// until it passes (bounded by the probe's own threshold).
func (k *kubelet) waitStartup(ctx context.Context, p *pod, c corev1.Container) error {
	probe := c.StartupProbe
	if probe == nil || probe.Exec == nil {
		return nil
	}
	var last []byte
	argv := k.wrap(p, c.VolumeMounts, probe.Exec.Command)
	for range max(probe.FailureThreshold, 1) {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		var err error
		if last, err = cmd.CombinedOutput(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(max(probe.PeriodSeconds, 1)) * time.Second / 4):
		}
	}
	return fmt.Errorf("startup probe of %s never passed: %s", c.Name, last)
}

func (k *kubelet) stopPod(p *pod) {
	p.mu.Lock()
	p.stopped = true
	containers := p.containers
	p.mu.Unlock()
	for i := len(containers) - 1; i >= 0; i-- {
		containers[i].stop()
	}
}

// kill sends SIGKILL to a container's processes, as a crash would; the
// kubelet restarts it after down (at least a second). podKey is the
// DaemonSet's namespace/name: a node runs one pod per LoadBalancer.
func (k *kubelet) kill(podKey, container string, down time.Duration) error {
	k.mu.Lock()
	p, ok := k.pods[podKey]
	k.mu.Unlock()
	if !ok {
		return fmt.Errorf("no pod of %s on %s", podKey, k.node)
	}
	p.mu.Lock()
	containers := p.containers
	p.mu.Unlock()
	for _, c := range containers {
		if c.name == container {
			c.mu.Lock()
			c.down = down
			c.mu.Unlock()
			return c.signal(syscall.SIGKILL)
		}
	}
	return fmt.Errorf("no container %s in the pod of %s on %s", container, podKey, k.node)
}

func (c *container) start() error {
	log, err := os.OpenFile(c.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(c.argv[0], c.argv[1:]...)
	cmd.Env = c.env
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: a kill reaches HAProxy's workers too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("failed to start %s: %w", c.name, err)
	}
	c.mu.Lock()
	c.cmd, c.exited = cmd, make(chan struct{})
	exited := c.exited
	c.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		log.Close()
		// Whatever the container left behind in its group goes too.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		close(exited)
		c.mu.Lock()
		stopped := c.stopped
		c.mu.Unlock()
		if !stopped {
			c.mu.Lock()
			down := max(c.down, restartBackoff)
			c.down = 0
			c.mu.Unlock()
			time.Sleep(down) // the kubelet's restart back-off
			c.mu.Lock()
			stopped = c.stopped
			c.mu.Unlock()
			if !stopped {
				_ = c.start()
			}
		}
	}()
	return nil
}

func (c *container) signal(sig syscall.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil {
		return fmt.Errorf("%s is not running", c.name)
	}
	return syscall.Kill(-c.cmd.Process.Pid, sig)
}

// stop ends the container: SIGTERM, then SIGKILL after a grace period.
func (c *container) stop() {
	c.mu.Lock()
	c.stopped = true
	cmd, exited := c.cmd, c.exited
	c.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
}
