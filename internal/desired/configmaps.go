package desired

import (
	"encoding/json"
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
)

// owned is the metadata of an object in the data-plane namespace. It
// carries no owner reference (they cannot cross namespaces): the labels say
// whose it is, and the LoadBalancer's finalizer deletes it.
func owned(lb *v1alpha1.LoadBalancer, namespace, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: Labels(lb, component)}
}

// ownedInTenantNamespace is the metadata of an object in the
// LoadBalancer's own namespace, which the garbage collector deletes with it.
func ownedInTenantNamespace(lb *v1alpha1.LoadBalancer, name, component string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name: name, Namespace: lb.Namespace, Labels: Labels(lb, component),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(lb, v1alpha1.GroupVersion.WithKind("LoadBalancer"))},
	}
}

func configMap(meta metav1.ObjectMeta, data map[string]string) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta,
		Data:       data,
	}
}

// HAProxyConfigMap holds haproxy.cfg, the same for every node; its servers
// as data for the runtime API; the server slot assignment of Service
// backends; and which Secret holds each TLS listener's certificate (the
// agent reads the Secrets itself).
func HAProxyConfigMap(lb *v1alpha1.LoadBalancer, namespace string, cfg []byte, servers contract.ServerSet, slots map[string][]string) *corev1.ConfigMap {
	slotsJSON, _ := json.Marshal(slots) // maps marshal with sorted keys
	tlsJSON, _ := json.Marshal(TLSSecrets(lb))
	serversJSON, _ := json.Marshal(servers)
	return configMap(owned(lb, namespace, NamesFor(lb).HAProxyConfigMap, ComponentConfig), map[string]string{
		contract.KeyHAProxyConfig: string(cfg),
		contract.KeyServers:       string(serversJSON),
		contract.KeySlots:         string(slotsJSON),
		contract.KeyTLS:           string(tlsJSON),
	})
}

// TLSSecrets maps each TLS listener to its Secret.
func TLSSecrets(lb *v1alpha1.LoadBalancer) map[string]string {
	out := map[string]string{}
	for _, l := range lb.Spec.Listeners {
		if l.TLS != nil {
			out[l.Name] = l.TLS.SecretRef.Name
		}
	}
	return out
}

// KeepalivedConfigMap holds each node's keepalived.conf under "<node>.conf"
// and the VRRP record.
func KeepalivedConfigMap(lb *v1alpha1.LoadBalancer, namespace string, confs map[string][]byte, record contract.VRRPRecord) *corev1.ConfigMap {
	data := map[string]string{}
	for _, node := range slices.Sorted(maps.Keys(confs)) {
		data[node+contract.KeepalivedKeySuffix] = string(confs[node])
	}
	recordJSON, _ := json.Marshal(record)
	data[contract.KeyVRRP] = string(recordJSON)
	return configMap(owned(lb, namespace, NamesFor(lb).KeepalivedConfigMap, ComponentConfig), data)
}

// ReportConfigMap is where agents report. The operator applies only its
// metadata; the data keys belong to the agents' field manager and survive
// every apply.
func ReportConfigMap(lb *v1alpha1.LoadBalancer, namespace string) *corev1.ConfigMap {
	return configMap(owned(lb, namespace, NamesFor(lb).ReportConfigMap, ComponentAgent), nil)
}
