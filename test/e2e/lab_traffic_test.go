package e2e

// Traffic through the VIP: balancing, health checks, HTTPS.

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
	"github.com/hakeeper/hakeeper/internal/testing/testcert"
)

func count(t *testing.T, c *lab.Client, path string, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for range n {
		body, err := c.Get(ctx, "http://"+vip+path, "")
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		out[lab.Backend(body)]++
	}
	return out
}
func TestTrafficThroughTheVIP(t *testing.T) {
	l := requireLab(t)
	applyWebsite(t, l)
	c := l.NewClient(2 * time.Second)
	spread := count(t, c, "/", 40)
	if spread[lab.BackendName(0)] != 20 || spread[lab.BackendName(1)] != 20 {
		t.Errorf("round robin over two servers: got %v, want 20 each", spread)
	}
	if api := count(t, c, "/api/users", 10); api[lab.BackendName(2)] != 10 {
		t.Errorf("/api must reach backend-3 only: got %v", api)
	}
	if strings.Contains(fmt.Sprint(spread), lab.BackendName(2)) {
		t.Errorf("/ reached the api backend: %v", spread)
	}
}
func serversUp(t *testing.T, l *lab.Lab, lb *v1alpha1.LoadBalancer, backend string, want int32) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("%s servers up = %d", backend, want), func() error {
		got := &v1alpha1.LoadBalancer{}
		if err := l.Client.Get(ctx, client.ObjectKeyFromObject(lb), got); err != nil {
			return err
		}
		for _, b := range got.Status.Backends {
			if b.Name == backend && b.ServersUp == want {
				return nil
			}
		}
		return fmt.Errorf("backends %+v", got.Status.Backends)
	})
}
func TestHealthChecks(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	lb := variant("health", addr)
	createAndWait(t, l, lb)
	serversUp(t, l, lb, "web", 2)
	t.Cleanup(func() { _ = l.SetBackendHealthy(0, true) })
	if err := l.SetBackendHealthy(0, false); err != nil {
		t.Fatal(err)
	}
	serversUp(t, l, lb, "web", 1)
	c := l.NewClient(2 * time.Second)
	for range 10 {
		body, err := c.Get(ctx, "http://"+addr+"/", "")
		if err != nil || lab.Backend(body) != lab.BackendName(1) {
			t.Fatalf("a failed server got traffic or the VIP failed: %q %v", body, err)
		}
	}
	if err := l.SetBackendHealthy(0, true); err != nil {
		t.Fatal(err)
	}
	serversUp(t, l, lb, "web", 2) // after rise (2) checks
	seen := map[string]bool{}
	for range 10 {
		body, err := c.Get(ctx, "http://"+addr+"/", "")
		if err != nil {
			t.Fatal(err)
		}
		seen[lab.Backend(body)] = true
	}
	if !seen[lab.BackendName(0)] {
		t.Errorf("the recovered server gets no traffic: %v", seen)
	}
}

// do sends a request from the client namespace with headers.
func do(t *testing.T, c *http.Client, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// TestBalancing: weights split traffic in proportion, source hashing and
// the sticky cookie keep a client on one server, and a host route picks
// its backend.
func TestBalancing(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	servers := func(w1, w2 int32) []v1alpha1.Server {
		return []v1alpha1.Server{
			{Name: "b1", Address: lab.BackendAddr(0), Port: lab.BackendPort, Weight: ptr.To(w1)},
			{Name: "b2", Address: lab.BackendAddr(1), Port: lab.BackendPort, Weight: ptr.To(w2)},
		}
	}
	lb := variant("balancing", addr)
	lb.Spec.Listeners = []v1alpha1.Listener{
		{Name: "weighted", Port: 80, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "weighted",
			Routes: []v1alpha1.Route{{Host: "shop.example.com", Backend: "shop"}}},
		{Name: "sticky", Port: 81, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "sticky"},
		{Name: "source", Port: 82, Protocol: v1alpha1.ProtocolTCP, DefaultBackend: "source"},
	}
	lb.Spec.Backends = []v1alpha1.Backend{
		{Name: "weighted", Servers: servers(150, 50)},
		{Name: "sticky", StickyCookie: &v1alpha1.StickyCookie{Name: "SRV"}, Servers: servers(100, 100)},
		{Name: "source", Balance: v1alpha1.BalanceSource, Servers: servers(100, 100)},
		{Name: "shop", Servers: []v1alpha1.Server{{Name: "b3", Address: lab.BackendAddr(2), Port: lab.BackendPort}}},
	}
	createAndWait(t, l, lb)
	c := l.NewClient(2 * time.Second)

	weighted := map[string]int{}
	for range 40 {
		body, err := c.Get(ctx, "http://"+addr+"/", "")
		if err != nil {
			t.Fatal(err)
		}
		weighted[lab.Backend(body)]++
	}
	if weighted[lab.BackendName(0)] != 30 || weighted[lab.BackendName(1)] != 10 {
		t.Errorf("weights 150:50 over 40 requests: got %v, want 30 and 10", weighted)
	}
	if body, err := c.Get(ctx, "http://"+addr+"/", "shop.example.com:80"); err != nil || lab.Backend(body) != lab.BackendName(2) {
		t.Errorf("host route: %q %v", body, err)
	}

	hc := &http.Client{Timeout: 2 * time.Second, Transport: lab.Transport(l)}
	resp, body := do(t, hc, "http://"+addr+":81/", nil)
	cookie := resp.Header.Get("Set-Cookie")
	first := lab.Backend(body)
	if !strings.HasPrefix(cookie, "SRV=") {
		t.Fatalf("no sticky cookie: %q", cookie)
	}
	for range 10 {
		if _, body := do(t, hc, "http://"+addr+":81/", map[string]string{"Cookie": strings.Split(cookie, ";")[0]}); lab.Backend(body) != first {
			t.Fatalf("the sticky cookie did not keep the client on %s: %q", first, body)
		}
	}

	seen := map[string]bool{}
	for range 10 {
		body, err := c.Get(ctx, "http://"+addr+":82/", "")
		if err != nil {
			t.Fatal(err)
		}
		seen[lab.Backend(body)] = true
	}
	if len(seen) != 1 {
		t.Errorf("source hashing sent one client to %v", seen)
	}
}
func selfSigned(t *testing.T, host string) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := testcert.SelfSigned(host)
	if err != nil {
		t.Fatal(err)
	}
	return certPEM, keyPEM
}

// TestHTTPS terminates TLS on the VIP with a certificate from a Secret,
// which the agents read themselves (mode 0600 on the node).
func TestHTTPS(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	certPEM, keyPEM := selfSigned(t, "shop.example.com")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "shop-tls", Namespace: "default"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}}
	if err := l.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, secret) })
	lb := variant("tls", addr)
	lb.Spec.Listeners = []v1alpha1.Listener{{Name: "https", Port: 443, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web",
		TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: "shop-tls"}}}}
	createAndWait(t, l, lb)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tr := lab.Transport(l)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "shop.example.com", MinVersion: tls.VersionTLS12}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: tr}
	resp, body := do(t, hc, "https://"+addr+"/", nil)
	if resp.TLS == nil || !strings.HasPrefix(body, "backend=") {
		t.Fatalf("no TLS answer from a backend: %q", body)
	}
	tlsDir, err := l.PodVolume(lab.NodeName(0), lb, desired.VolumeTLS)
	if err != nil {
		t.Fatal(err)
	}
	pemFile := filepath.Join(tlsDir, "https.pem")
	if fi, err := os.Stat(pemFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("certificate file %s: %v, mode %v; want 0600", pemFile, err, fi.Mode().Perm())
	}

	// Rotation: a new certificate in the Secret is served within moments
	// (the agents watch the Secret), through a reload on every node.
	reloadsBefore := reloads(t, l, lab.NodeName(1), lb)
	newCert, newKey := selfSigned(t, "shop.example.com")
	pool.AppendCertsFromPEM(newCert)
	secret.Data = map[string][]byte{"tls.crt": newCert, "tls.key": newKey}
	if err := l.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	want, _ := pem.Decode(newCert)
	start := time.Now()
	eventually(t, 30*time.Second, "the rotated certificate served", func() error {
		resp, err := hc.Get("https://" + addr + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, want.Bytes) {
			return errors.New("still the old certificate")
		}
		return nil
	})
	t.Logf("rotated certificate served after %.1fs", time.Since(start).Seconds())
	eventually(t, 30*time.Second, "node-b reloading for the new certificate", func() error {
		if n := reloads(t, l, lab.NodeName(1), lb); n == reloadsBefore {
			return errors.New("no reload yet")
		}
		return nil
	})
}
