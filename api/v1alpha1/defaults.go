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

// WithClassDefaults returns spec with the empty spec.vrrp fields the class
// has defaults for filled in.
func (c *LoadBalancerClass) WithClassDefaults(spec LoadBalancerSpec) LoadBalancerSpec {
	out := *spec.DeepCopy()
	if out.VRRP.AdvertIntervalMilliseconds == nil && c.Spec.VRRP.AdvertIntervalMilliseconds != nil {
		v := *c.Spec.VRRP.AdvertIntervalMilliseconds
		out.VRRP.AdvertIntervalMilliseconds = &v
	}
	if out.VRRP.Mode == "" {
		out.VRRP.Mode = c.Spec.VRRP.Mode
	}
	return out
}
