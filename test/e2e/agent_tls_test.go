package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/testing/lab"
)

// TestTLSFaults: a rotation to a certificate HAProxy rejects is checked
// where HAProxy does not load from, so the live certificate stays, even
// for a HAProxy restarted afterwards; a listener whose Secret is missing is
// the only one left out, status names it, and other changes still apply.
func TestTLSFaults(t *testing.T) {
	l := requireLab(t)
	addr := newVIP(t)
	certPEM, keyPEM := selfSigned(t, "faults.example.com")
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "faults-tls", Namespace: "default"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}}
	if err := l.Client.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Client.Delete(ctx, secret) })
	lb := variant("tlsfaults", addr)
	lb.Spec.Listeners = append(lb.Spec.Listeners, v1alpha1.Listener{Name: "https", Port: 443, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web",
		TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: secret.Name}}})
	createAndWait(t, l, lb)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	tr := lab.Transport(l)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "faults.example.com", MinVersion: tls.VersionTLS12}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: tr}
	served, _ := pem.Decode(certPEM)
	servesOriginal := func() error {
		resp, err := hc.Get("https://" + addr + "/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, served.Bytes) {
			return errors.New("not the original certificate")
		}
		return nil
	}
	// A rotation to a certificate that is no certificate.
	secret.Data = map[string][]byte{"tls.crt": []byte("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"), "tls.key": keyPEM}
	start := time.Now()
	if err := l.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "the rejected rotation in status", degradedWith(l, lb, v1alpha1.LoadBalancerConfigRejectedReason, "haproxy rejected the config", "/tls/.candidate/"))
	t.Logf("a rotation to a bad certificate: ConfigRejected in status after %.1fs; the old certificate serves", time.Since(start).Seconds())
	if err := servesOriginal(); err != nil {
		t.Fatalf("after a rejected rotation: %v", err)
	}
	// The live certificate is still the good one: a restarted HAProxy
	// starts and serves it.
	if err := l.Kill(lab.NodeName(0), lb, desired.ContainerHAProxy); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "node-a's HAProxy back with the original certificate", func() error {
		if !l.HoldsVIP(lab.NodeName(0), addr) {
			return errors.New("node-a does not hold the VIP yet")
		}
		return servesOriginal()
	})

	// A second TLS listener naming a Secret that does not exist: only it
	// is left out; the other listeners serve and a later change applies.
	secret.Data = map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM}
	if err := l.Client.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) {
		lb.Spec.Listeners = append(lb.Spec.Listeners, v1alpha1.Listener{Name: "admin", Port: 8443, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web",
			TLS: &v1alpha1.ListenerTLS{SecretRef: v1alpha1.SecretReference{Name: "faults-missing"}}})
	})
	start = time.Now()
	eventually(t, 60*time.Second, "status naming the missing Secret", degradedWith(l, lb, v1alpha1.LoadBalancerConfigRejectedReason, "listener admin is not served", "faults-missing"))
	t.Logf("a listener naming a missing Secret: named in status %.1fs after the spec change; the other listeners serve", time.Since(start).Seconds())
	if err := servesOriginal(); err != nil {
		t.Errorf("https with another listener's Secret missing: %v", err)
	}
	update(t, l, lb, func(lb *v1alpha1.LoadBalancer) {
		lb.Spec.Listeners = append(lb.Spec.Listeners, v1alpha1.Listener{Name: "plain", Port: 8080, Protocol: v1alpha1.ProtocolHTTP, DefaultBackend: "web"})
	})
	c := l.NewClient(2 * time.Second)
	eventually(t, 60*time.Second, "a later listener served despite the missing Secret", func() error {
		_, err := c.Get(ctx, "http://"+addr+":8080/", "")
		return err
	})
	if _, err := c.Get(ctx, "http://"+addr+"/", ""); err != nil {
		t.Errorf("http with a Secret missing: %v", err)
	}
}
