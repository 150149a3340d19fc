package v1alpha1

// Defaults for optional fields. The CRD carries no schema defaults: an empty
// field keeps meaning "the operator's default", so a later release can
// improve a default without rewriting stored objects. Every reader goes
// through these constants.
const (
	DefaultVRRPVersion                = 3
	DefaultAdvertIntervalMilliseconds = 50
	DefaultPreemptDelaySeconds        = 0
	DefaultDerivedPriority            = 100

	DefaultCheckIntervalMilliseconds = 2000
	DefaultCheckTimeoutMilliseconds  = 1000
	DefaultCheckRise                 = 2
	DefaultCheckFall                 = 3
	DefaultCheckPath                 = "/"

	DefaultServerWeight = 100
	DefaultServerSlots  = 16

	DefaultMaxConnections       = 20000
	DefaultConnectMilliseconds  = 5000
	DefaultClientSeconds        = 50
	DefaultServerSeconds        = 50
	DefaultHTTPRequestSeconds   = 10
	DefaultTunnelSeconds        = 3600
	DefaultHardStopAfterSeconds = 300
)

// Int32Or returns *p, or def when p is nil.
func Int32Or(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// WithClassDefaults returns spec with the empty fields the class decides
// filled in: the class's spec.vrrp defaults, and, where the operator's own
// default would pass one of the class's limits, the limit instead (a
// LoadBalancer that sets none of them never exceeds its class).
func (c *LoadBalancerClass) WithClassDefaults(spec LoadBalancerSpec) LoadBalancerSpec {
	out := *spec.DeepCopy()
	if out.VRRP.AdvertIntervalMilliseconds == nil && c.Spec.VRRP.AdvertIntervalMilliseconds != nil {
		v := *c.Spec.VRRP.AdvertIntervalMilliseconds
		out.VRRP.AdvertIntervalMilliseconds = &v
	}
	if min := c.Spec.Limits.MinAdvertIntervalMilliseconds; out.VRRP.AdvertIntervalMilliseconds == nil && min != nil && *min > DefaultAdvertIntervalMilliseconds {
		v := *min
		out.VRRP.AdvertIntervalMilliseconds = &v
	}
	if out.VRRP.Mode == "" {
		out.VRRP.Mode = c.Spec.VRRP.Mode
	}
	l := c.Spec.Limits
	if out.HAProxy.Threads == nil && l.MaxThreads != nil {
		v := *l.MaxThreads
		out.HAProxy.Threads = &v
	}
	capUnset(&out.HAProxy.MaxConnections, DefaultMaxConnections, l.MaxConnections)
	if l.MaxTimeoutSeconds != nil {
		t := &out.HAProxy.Timeouts
		capUnset(&t.ClientSeconds, DefaultClientSeconds, l.MaxTimeoutSeconds)
		capUnset(&t.ServerSeconds, DefaultServerSeconds, l.MaxTimeoutSeconds)
		capUnset(&t.HTTPRequestSeconds, DefaultHTTPRequestSeconds, l.MaxTimeoutSeconds)
		capUnset(&t.TunnelSeconds, DefaultTunnelSeconds, l.MaxTimeoutSeconds)
		capUnset(&t.HardStopAfterSeconds, DefaultHardStopAfterSeconds, l.MaxTimeoutSeconds)
		ms := *l.MaxTimeoutSeconds * 1000
		capUnset(&t.ConnectMilliseconds, DefaultConnectMilliseconds, &ms)
	}
	return out
}

// capUnset sets an empty field to limit when its default passes limit.
func capUnset(field **int32, def int32, limit *int32) {
	if *field == nil && limit != nil && def > *limit {
		v := *limit
		*field = &v
	}
}
