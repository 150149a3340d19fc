package controllers

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// nameTTL is how long a name's addresses, or its failure, are reused:
// every event reconciles, and a name that does not resolve would otherwise
// hold a worker for the resolver's timeout each time.
const nameTTL = 30 * time.Second

// lookupTimeout bounds one resolution.
const lookupTimeout = 3 * time.Second

type resolvedName struct {
	addrs []netip.Addr
	err   error
	at    time.Time
}

// lookup resolves a static server's DNS name with the manager's resolver,
// the one place the class's policy is enforced; HAProxy is given the
// address. Results are kept for nameTTL.
func (r *LoadBalancerReconciler) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if v, ok := r.names.Load(host); ok && r.now().Sub(v.(resolvedName).at) < nameTTL {
		return v.(resolvedName).addrs, v.(resolvedName).err
	}
	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	resolveName := r.Resolve
	if resolveName == nil {
		resolveName = func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		}
	}
	addrs, err := resolveName(ctx, host)
	r.names.Store(host, resolvedName{addrs: addrs, err: err, at: r.now()})
	return addrs, err
}
