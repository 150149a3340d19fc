package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestReloadFailureKeepsServing: configs that pass `haproxy -c` but that
// HAProxy cannot start. A listener on a port another process holds on
// node-a: the agent finds the port taken before it reloads (a reload that
// fails pauses the old workers' listeners for seconds), status says so,
// naming the port, with node-a's hash not moved; no request fails, and a
// later restart of HAProxy starts. A maxConnections the node's file limit
// cannot honour is refused before any reload, on every node.
func TestReloadFailureKeepsServing(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	lb := variant("reload", addr)
	createAndWait(t, l, lb)
	c := l.NewClient(2 * time.Second)

	// Another process listens on every address of node-a at port 8099.
	const port = 8099
	holdCtx, release := context.WithTimeout(ctx, 3*time.Minute)
	defer release()
	hold, err := l.NodeCommand(holdCtx, lab.NodeName(0), "python3", "-c", fmt.Sprintf(
		"import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('0.0.0.0',%d))\ns.listen()\nprint('listening',flush=True)\ntime.sleep(170)", port))
	if err != nil {
		t.Fatal(err)
	}
	out, err := hold.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := hold.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hold.Process.Kill(); _ = hold.Wait() })
	buf := make([]byte, 64)
	if n, err := out.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "listening") {
		t.Fatalf("the port holder did not start: %v %q", err, buf[:n])
	}

	probe := c.StartProbe("http://"+addr+"/", 10*time.Millisecond, 2*time.Minute)
	start := time.Now()
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) {
		lb.Spec.Listeners = append(lb.Spec.Listeners, v1alpha1.Listener{Name: "taken", Port: port, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"})
	})
	var degraded string
	eventually(t, 60*time.Second, "status naming node-a's refused reload", func() error {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		d := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
		if d == nil || d.Reason != v1alpha1.LoadBalancerConfigRejectedReason {
			return fmt.Errorf("degraded %+v", d)
		}
		degraded = d.Message
		for _, want := range []string{"node node-a", "haproxy.cfg not applied", fmt.Sprintf("bind %s:%d: address already in use", addr, port)} {
			if !strings.Contains(d.Message, want) {
				return fmt.Errorf("message %q lacks %q", d.Message, want)
			}
		}
		for _, n := range got.Status.Nodes {
			if n.Name != lab.NodeName(0) && !n.Ready {
				return fmt.Errorf("%s has not applied the config (%s)", n.Name, n.Message)
			}
		}
		return nil
	})
	shown := time.Since(start)
	time.Sleep(time.Second)
	outage, ok, failed := probe.Stop()
	t.Logf("refused reload: status said so after %.1fs: %s", shown.Seconds(), degraded)
	t.Logf("client through the refused reload: %d answered, %d failed, longest outage %v", ok, failed, outage)
	if failed > 0 {
		t.Errorf("%d requests failed over a refused reload: %v", failed, probe.Errors())
	}
	// node-a's old workers serve on, through the VIP.
	if !l.HoldsVIP(lab.NodeName(0), addr) {
		t.Error("node-a lost the VIP over a refused reload")
	}
	if _, err := c.Get(ctx, "http://"+addr+"/", ""); err != nil {
		t.Fatalf("the last good config stopped serving: %v", err)
	}
	// A restart of HAProxy starts from the last good config on disk.
	haproxy, err := l.Container(lab.NodeName(0), lb, desired.ContainerHAProxy)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Kill(lab.NodeName(0), lb, desired.ContainerHAProxy); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "node-a's HAProxy restarted and serving through the VIP", func() error {
		now, err := l.Container(lab.NodeName(0), lb, desired.ContainerHAProxy)
		if err != nil {
			return err
		}
		if now.ID == haproxy.ID {
			return fmt.Errorf("not restarted yet")
		}
		if !l.HoldsVIP(lab.NodeName(0), addr) {
			return fmt.Errorf("node-a does not hold the VIP")
		}
		_, err = c.Get(ctx, "http://"+addr+"/", "")
		return err
	})

	// Without the port holder the same spec now applies everywhere.
	_ = hold.Process.Kill()
	_ = hold.Wait()
	// The agent does not retry a config HAProxy refused until it changes.
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) { lb.Spec.Listeners[1].Port = port + 1 })
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)
	if _, err := c.Get(ctx, fmt.Sprintf("http://%s:%d/", addr, port+1), ""); err != nil {
		t.Errorf("the new listener does not serve: %v", err)
	}

	// More connections than the node's file limit allows: refused on every
	// node before a reload, in the agent's words.
	start = time.Now()
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) { lb.Spec.HAProxy.MaxConnections = ptr.To(int32(1000000)) })
	eventually(t, 60*time.Second, "the file limit named in status", func() error {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		d := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
		if d == nil || d.Reason != v1alpha1.LoadBalancerConfigRejectedReason || !strings.Contains(d.Message, "maxconn 1000000 needs about 2000100 open files") {
			return fmt.Errorf("degraded %+v", d)
		}
		degraded = d.Message
		return nil
	})
	t.Logf("maxConnections above the file limit: status said so after %.1fs: %.300s", time.Since(start).Seconds(), degraded)
	if _, err := c.Get(ctx, "http://"+addr+"/", ""); err != nil {
		t.Errorf("the last good config stopped serving: %v", err)
	}
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) { lb.Spec.HAProxy.MaxConnections = ptr.To(int32(4000)) })
	waitActive(t, l, lb, lab.NodeName(0), 60*time.Second)
}
