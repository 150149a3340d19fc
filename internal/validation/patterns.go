// Package validation checks a LoadBalancer the way the API server does, so
// that `hakeeper render` and the operator (through internal/render) refuse
// the same input the CRD's schema and CEL rules refuse, with errors that
// name the field. It is also the last gate before a string reaches a config
// file. The agent does not use it: it checks the rendered files instead
// (internal/configguard, then the daemons' own checks).
package validation

import "regexp"

// The patterns below are copied into the API's +kubebuilder:validation:Pattern
// markers; patterns_test.go fails when the generated CRD and these differ.
// None of them admits whitespace, quotes, backslashes, '#', '{', '}' or '$':
// the characters HAProxy and Keepalived give meaning to.
const (
	// NamePattern: listener, backend, server and route backend names (a DNS
	// label). They become HAProxy proxy and server names.
	NamePattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// SubdomainPattern: Node and Secret names (a DNS subdomain).
	SubdomainPattern = `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// ServiceNamePattern: Service names (a DNS-1035 label).
	ServiceNamePattern = `^[a-z]([-a-z0-9]*[a-z0-9])?$`
	// InterfacePattern: Linux interface names (at most 15 bytes).
	InterfacePattern = `^[A-Za-z0-9][A-Za-z0-9_.-]*$`
	// HostPattern: route hosts, lower case, with an optional leading "*.".
	HostPattern = `^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// PathPrefixPattern: route path prefixes.
	PathPrefixPattern = `^/[A-Za-z0-9._~%!*+,;=:@/-]*$`
	// CheckPathPattern: health check paths, which may carry a query.
	CheckPathPattern = `^/[A-Za-z0-9._~%!*+,;=:@/?&-]*$`
	// HeaderPattern: HTTP header names hashed by balance Header.
	HeaderPattern = `^[A-Za-z0-9][A-Za-z0-9-]*$`
	// CookiePattern: sticky cookie names.
	CookiePattern = `^[A-Za-z0-9_-]+$`
)

var (
	nameRE        = regexp.MustCompile(NamePattern)
	subdomainRE   = regexp.MustCompile(SubdomainPattern)
	serviceNameRE = regexp.MustCompile(ServiceNamePattern)
	interfaceRE   = regexp.MustCompile(InterfacePattern)
	hostRE        = regexp.MustCompile(HostPattern)
	pathPrefixRE  = regexp.MustCompile(PathPrefixPattern)
	checkPathRE   = regexp.MustCompile(CheckPathPattern)
	headerRE      = regexp.MustCompile(HeaderPattern)
	cookieRE      = regexp.MustCompile(CookiePattern)
)

// MaxLoadBalancerNameLength keeps the names derived from a LoadBalancer's
// (its ConfigMaps, DaemonSet and labels, at most 63 characters) valid.
const MaxLoadBalancerNameLength = 50

// Length limits that go with the patterns, as in the API's MaxLength markers.
const (
	maxNameLength        = 63
	maxSubdomainLength   = 253
	maxInterfaceLength   = 15
	maxPathLength        = 1024
	maxHeaderLength      = 64
	maxCookieLength      = 64
	maxVirtualIPs        = 16
	maxListeners         = 32
	maxSourceRanges      = 64
	maxBackends          = 64
	maxRoutes            = 64
	maxServersPerBackend = 64
	maxPriorities        = 64
)
