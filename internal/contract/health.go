package contract

// The paths the kubelet probes on the node's loopback (the data plane runs
// on the host network), at the ports desired.HealthPorts gives.
const (
	// AgentAlivePath answers 200 while the agent's loop beats (a hung
	// agent is restarted).
	AgentAlivePath = "/healthz"
	// AgentStartedPath answers 200 once the agent has written HAProxy's
	// and keepalived's configs, which the daemons' containers wait for.
	AgentStartedPath = "/started"
	// HAProxyMonitorPath is HAProxy's monitor-uri on its health frontend:
	// answered by the worker itself, so a HAProxy that stops answering
	// fails it.
	HAProxyMonitorPath = "/healthz"
)
