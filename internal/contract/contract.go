// Package contract is everything the operator and the node agents must
// agree on, in one place: the keys of the ConfigMaps the operator renders
// and the agents read, the servers passed as data for the runtime API, the
// layout of files on a node, the report agents write back, and the hashes
// both compute. A change here changes both sides at once.
//
//   - keys.go: ConfigMap keys, the agent's environment, the VRRP record,
//     slot and TLS maps
//   - servers.go: haproxy.cfg's servers as data, and the runtime commands
//     between two ServerSets
//   - layout.go: files and sockets on a node
//   - report.go: what agents report
//   - hash.go: the config hash both sides compute
package contract

// KeyServers holds the ServerSet (JSON) in the haproxy ConfigMap.
const KeyServers = "servers.json"

// AgentFieldManager is the field manager the agents write their report
// ConfigMap's keys with; the operator leaves those keys alone.
const AgentFieldManager = "hakeeper-agent"
