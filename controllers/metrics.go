package controllers

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
)

// The manager's figures per LoadBalancer, beside controller-runtime's per
// controller. Series of a deleted LoadBalancer are dropped with it.
var (
	reconcileOutcomes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hakeeper_loadbalancer_reconciles_total",
		Help: "Reconciles per LoadBalancer by outcome: Applied (the data plane matches the spec), Error (retried), or the reason the spec was not applied (InvalidSpec, ClassNotFound, Conflict, ...).",
	}, []string{"loadbalancer_namespace", "loadbalancer", "outcome"})
	statusConditions = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hakeeper_loadbalancer_status_condition",
		Help: "A LoadBalancer's status conditions: 1 for the condition's current status (true, false or unknown), 0 for the others.",
	}, []string{"loadbalancer_namespace", "loadbalancer", "type", "status"})
	virtualIPHolders = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hakeeper_loadbalancer_virtual_ip_holders",
		Help: "Nodes whose interface carries a virtual IP, as the agents observe them: 1 is right, 0 leaves it unserved, more is a split brain.",
	}, []string{"loadbalancer_namespace", "loadbalancer", "virtual_ip"})
	nodesByRole = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "hakeeper_loadbalancer_nodes",
		Help: "A LoadBalancer's nodes by the VRRP role their agents report (master, backup, fault, unknown): more than one master is a split brain, none leaves the virtual IPs unserved.",
	}, []string{"loadbalancer_namespace", "loadbalancer", "role"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(reconcileOutcomes, statusConditions, nodesByRole, virtualIPHolders)
}

// Outcomes besides the stop reasons.
const (
	outcomeApplied = "Applied"
	outcomeError   = "Error"
)

// recordReconcile counts one reconcile and publishes the status it wrote.
func recordReconcile(lb *v1alpha1.LoadBalancer, s *scope, err error) {
	outcome := outcomeApplied
	switch {
	case err != nil && !s.stopped():
		outcome = outcomeError
	case s.stopped():
		outcome = s.stopReason
	}
	reconcileOutcomes.WithLabelValues(lb.Namespace, lb.Name, outcome).Inc()
	for _, c := range lb.Status.Conditions {
		for _, st := range []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown} {
			v := 0.0
			if c.Status == st {
				v = 1
			}
			statusConditions.WithLabelValues(lb.Namespace, lb.Name, c.Type, strings.ToLower(string(st))).Set(v)
		}
	}
	roles := map[v1alpha1.VRRPRole]int{v1alpha1.VRRPRoleMaster: 0, v1alpha1.VRRPRoleBackup: 0, v1alpha1.VRRPRoleFault: 0, v1alpha1.VRRPRoleUnknown: 0}
	for _, n := range lb.Status.Nodes {
		roles[n.Role]++
	}
	for role, n := range roles {
		nodesByRole.WithLabelValues(lb.Namespace, lb.Name, strings.ToLower(string(role))).Set(float64(n))
	}
	virtualIPHolders.DeletePartialMatch(prometheus.Labels{"loadbalancer_namespace": lb.Namespace, "loadbalancer": lb.Name})
	for _, h := range lb.Status.Holders {
		virtualIPHolders.WithLabelValues(lb.Namespace, lb.Name, h.VirtualIP).Set(float64(len(h.Nodes)))
	}
}

// forgetMetrics drops a deleted LoadBalancer's series.
func forgetMetrics(namespace, name string) {
	match := prometheus.Labels{"loadbalancer_namespace": namespace, "loadbalancer": name}
	reconcileOutcomes.DeletePartialMatch(match)
	statusConditions.DeletePartialMatch(match)
	nodesByRole.DeletePartialMatch(match)
	virtualIPHolders.DeletePartialMatch(match)
}
