package controllers

import (
	"context"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/priority"
	"github.com/hakeeper/hakeeper/internal/resolve"
)

// What other LoadBalancers claim (addresses, router IDs, the nodes they
// lead) is read through indexes the cache keeps with its store, so that a
// reconcile, and the mapping of an event to the LoadBalancers it concerns,
// costs what concerns it. Listing every LoadBalancer instead made
// converging n of them cost n^2 (hack/bench/scale).
const (
	// indexClaimedAddr: the addresses a LoadBalancer asks for (spec) or
	// holds (status).
	indexClaimedAddr = "hakeeper.io/claimed-address"
	// indexRouterID: the router ID it pins (spec) or holds (status).
	indexRouterID = "hakeeper.io/router-id"
	// indexStatusNode: the nodes its status lists.
	indexStatusNode = "hakeeper.io/status-node"
	// indexClass: the class it names or was applied with; noClass when it
	// names none (it takes the default).
	indexClass = "hakeeper.io/class"
	// indexWaiting: the reason it is refused for, when another's change
	// may end the refusal (conflict, address, share, class policy).
	indexWaiting = "hakeeper.io/waiting"
)

// indexPodLoadBalancer indexes the data plane's pods by their
// LoadBalancer's namespace/name: a label selector would look at every
// pod in the data-plane namespace, every LoadBalancer's.
const indexPodLoadBalancer = "hakeeper.io/pod-loadbalancer"

// noClass is indexClass's value for a LoadBalancer that names no class.
const noClass = "<default>"

// waitingReasons are the Degraded reasons a change elsewhere may clear.
var waitingReasons = []string{
	v1alpha1.LoadBalancerConflictReason, v1alpha1.LoadBalancerAddressUnavailableReason,
	v1alpha1.LoadBalancerLimitExceededReason, v1alpha1.LoadBalancerNotAllowedByClassReason,
}

func setupClaimIndexes(ctx context.Context, indexer client.FieldIndexer) error {
	if err := indexer.IndexField(ctx, &corev1.Pod{}, indexPodLoadBalancer, func(obj client.Object) []string {
		l := obj.GetLabels()
		if l[desired.LabelComponent] != desired.ComponentDataPlane || l[desired.LabelLoadBalancer] == "" {
			return nil
		}
		return []string{l[desired.LabelLoadBalancerNamespace] + "/" + l[desired.LabelLoadBalancer]}
	}); err != nil {
		return err
	}
	for index, values := range map[string]func(*v1alpha1.LoadBalancer) []string{
		indexClaimedAddr: vipAddrs,
		indexRouterID: func(lb *v1alpha1.LoadBalancer) []string {
			var out []string
			for _, id := range []int32{routerIDOf(lb), lb.Status.VirtualRouterID} {
				if s := strconv.Itoa(int(id)); id != 0 && !slices.Contains(out, s) {
					out = append(out, s)
				}
			}
			return out
		},
		indexStatusNode: func(lb *v1alpha1.LoadBalancer) []string {
			out := make([]string, 0, len(lb.Status.Nodes))
			for _, n := range lb.Status.Nodes {
				out = append(out, n.Name)
			}
			return out
		},
		indexClass: func(lb *v1alpha1.LoadBalancer) []string {
			out := []string{noClass}
			if lb.Spec.ClassName != "" {
				out[0] = lb.Spec.ClassName
			}
			if c := lb.Status.ClassName; c != "" && c != out[0] {
				out = append(out, c)
			}
			return out
		},
		indexWaiting: func(lb *v1alpha1.LoadBalancer) []string {
			c := meta.FindStatusCondition(lb.Status.Conditions, v1alpha1.LoadBalancerDegradedCondition)
			if c != nil && slices.Contains(waitingReasons, c.Reason) {
				return []string{c.Reason}
			}
			return nil
		},
	} {
		if err := indexer.IndexField(ctx, &v1alpha1.LoadBalancer{}, index, func(obj client.Object) []string {
			return values(obj.(*v1alpha1.LoadBalancer))
		}); err != nil {
			return err
		}
	}
	return nil
}

// listLoadBalancers lists from the cache without copying: what it returns
// shares the cache's objects and must only be read.
func listLoadBalancers(ctx context.Context, c client.Reader, opts ...client.ListOption) ([]v1alpha1.LoadBalancer, error) {
	var list v1alpha1.LoadBalancerList
	if err := c.List(ctx, &list, append(opts, client.UnsafeDisableDeepCopy)...); err != nil {
		return nil, err
	}
	return list.Items, nil
}

// allocation is what one LoadBalancer was last applied with by this
// process.
type allocation struct {
	routerID   int32
	virtualIPs []string
	priorities map[string]int32
}

// allocations remembers the router IDs, virtual IPs and priorities this
// process applied, by namespace/name, until the LoadBalancer goes: without
// it two LoadBalancers reconciled in quick succession could both take the
// same free one (or both make the same node their master) from a cache
// that lags the status patch. It is indexed like the cache, so that the
// claims it knows of first are found the same way.
type allocations struct {
	mu    sync.RWMutex
	byKey map[string]allocation
	// byValue maps an index (indexClaimedAddr, indexRouterID,
	// indexStatusNode: the nodes given priorities) and a value to keys.
	byValue map[string]map[string]map[string]bool
}

func (a *allocation) indexed() map[string][]string {
	out := map[string][]string{}
	if a.routerID != 0 {
		out[indexRouterID] = []string{strconv.Itoa(int(a.routerID))}
	}
	for _, v := range a.virtualIPs {
		if p, err := netip.ParsePrefix(v); err == nil {
			out[indexClaimedAddr] = append(out[indexClaimedAddr], p.Addr().String())
		}
	}
	for n := range a.priorities {
		out[indexStatusNode] = append(out[indexStatusNode], n)
	}
	return out
}

func (as *allocations) get(key string) (allocation, bool) {
	as.mu.RLock()
	defer as.mu.RUnlock()
	a, ok := as.byKey[key]
	return a, ok
}

func (as *allocations) set(key string, a allocation) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.unindex(key)
	if as.byKey == nil {
		as.byKey, as.byValue = map[string]allocation{}, map[string]map[string]map[string]bool{}
	}
	as.byKey[key] = a
	for index, values := range a.indexed() {
		if as.byValue[index] == nil {
			as.byValue[index] = map[string]map[string]bool{}
		}
		for _, v := range values {
			if as.byValue[index][v] == nil {
				as.byValue[index][v] = map[string]bool{}
			}
			as.byValue[index][v][key] = true
		}
	}
}

func (as *allocations) delete(key string) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.unindex(key)
	delete(as.byKey, key)
}

func (as *allocations) unindex(key string) {
	old, ok := as.byKey[key]
	if !ok {
		return
	}
	for index, values := range old.indexed() {
		for _, v := range values {
			delete(as.byValue[index][v], key)
			if len(as.byValue[index][v]) == 0 {
				delete(as.byValue[index], v)
			}
		}
	}
}

// keys are those allocated with value in index.
func (as *allocations) keys(index, value string) []string {
	as.mu.RLock()
	defer as.mu.RUnlock()
	var out []string
	for k := range as.byValue[index][value] {
		out = append(out, k)
	}
	return out
}

// claims answers one reconcile's questions about the other LoadBalancers
// from the indexes: each claim is built once, from the cache's object with
// what this process applied on top.
type claims struct {
	ctx     context.Context
	r       *LoadBalancerReconciler
	self    *v1alpha1.LoadBalancer
	classes []v1alpha1.LoadBalancerClass
	built   map[string]*otherClaim
	// found memoizes by: allocation asks HeldBy then RequestedBy of the
	// same address, and both read the same index entry.
	found map[[2]string][]*otherClaim
	// err is the first failed read; the reconcile fails with it.
	err error
}

// otherClaim is another LoadBalancer's claim and the priorities it gives
// its nodes.
type otherClaim struct {
	resolve.Claim
	priorities map[string]int32
}

func (r *LoadBalancerReconciler) claimsFor(ctx context.Context, self *v1alpha1.LoadBalancer, classes []v1alpha1.LoadBalancerClass) *claims {
	return &claims{ctx: ctx, r: r, self: self, classes: classes, built: map[string]*otherClaim{}, found: map[[2]string][]*otherClaim{}}
}

// by are the other LoadBalancers with value in index, from the cache and
// from what this process applied.
func (c *claims) by(index, value string) []*otherClaim {
	if out, ok := c.found[[2]string{index, value}]; ok {
		return out
	}
	items, err := listLoadBalancers(c.ctx, c.r.Client, client.MatchingFields{index: value})
	if err != nil {
		c.fail(err)
		return nil
	}
	var out []*otherClaim
	for i := range items {
		if o := c.claimOf(&items[i]); o != nil && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	for _, key := range c.r.allocations.keys(index, value) {
		o, ok := c.built[key]
		if !ok {
			ns, name, _ := strings.Cut(key, "/")
			lb := &v1alpha1.LoadBalancer{}
			if err := c.r.Client.Get(c.ctx, types.NamespacedName{Namespace: ns, Name: name}, lb); err != nil {
				if client.IgnoreNotFound(err) != nil {
					c.fail(err)
				}
				continue
			}
			o = c.claimOf(lb)
		}
		if o != nil && !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	c.found[[2]string{index, value}] = out
	return out
}

// Err is the first read that failed.
func (c *claims) Err() error { return c.err }

func (c *claims) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// claimOf builds another LoadBalancer's claim once (nil for self): what it
// asks for and holds, with what this process applied, newer than the
// cached status, on top.
func (c *claims) claimOf(other *v1alpha1.LoadBalancer) *otherClaim {
	if other.UID == c.self.UID {
		return nil
	}
	key := keyOf(other)
	if o, ok := c.built[key]; ok {
		return o
	}
	var nodes []string
	priorities := map[string]int32{}
	for _, n := range other.Status.Nodes {
		nodes = append(nodes, n.Name)
		priorities[n.Name] = n.Priority
	}
	claim := plan.ClaimOf(other, plan.RequestedAddrs(other), nodes)
	claim.Refused = plan.RefusedForItsSpec(other)
	if claim.Refused {
		// Asks for nothing: only what it holds counts.
		claim.RouterID = claim.HeldRouterID
	}
	if a, ok := c.r.allocations.get(claim.Key); ok {
		claim.HeldRouterID = a.routerID
		if !claim.Explicit || claim.Refused {
			claim.RouterID = a.routerID
		}
		for _, v := range a.virtualIPs {
			if addr := netip.MustParsePrefix(v).Addr(); !slices.Contains(claim.Held, addr) {
				claim.Held = append(claim.Held, addr)
			}
		}
		if a.priorities != nil {
			priorities = a.priorities
			// The nodes it was applied to, which the cached status may
			// not list yet: without them an ID it was just given looked
			// used only elsewhere, and once all 255 were used somewhere
			// it was handed out again on the same nodes (seen at 1000
			// LoadBalancers, hack/bench/scale).
			for n := range a.priorities {
				if !slices.Contains(claim.Nodes, n) {
					claim.Nodes = append(claim.Nodes, n)
				}
			}
		}
	}
	o := &otherClaim{Claim: claim, priorities: priorities}
	c.built[key] = o
	return o
}

// HeldBy names the other LoadBalancer that holds addr.
func (c *claims) HeldBy(addr netip.Addr) (string, bool) {
	for _, o := range c.by(indexClaimedAddr, addr.String()) {
		if slices.Contains(o.Held, addr) {
			return o.Key, true
		}
	}
	return "", false
}

// RequestedBy names another LoadBalancer, not refused, that asks for addr;
// only asked when none holds it.
func (c *claims) RequestedBy(addr netip.Addr) (string, bool) {
	for _, o := range c.by(indexClaimedAddr, addr.String()) {
		if !o.Refused && slices.Contains(o.VIPs, addr) {
			return o.Key, true
		}
	}
	return "", false
}

// contenders are the claims that may conflict with self: those sharing
// one of its addresses or its router ID.
func (c *claims) Contenders(self resolve.Claim) []resolve.Claim {
	var found []*otherClaim
	add := func(os []*otherClaim) {
		for _, o := range os {
			if !slices.Contains(found, o) {
				found = append(found, o)
			}
		}
	}
	for _, a := range self.VIPs {
		add(c.by(indexClaimedAddr, a.String()))
	}
	if self.RouterID != 0 {
		add(c.by(indexRouterID, strconv.Itoa(int(self.RouterID))))
	}
	return plain(found)
}

// onNodes are the claims of the LoadBalancers on any of nodes (in status,
// or given priorities by this process).
func (c *claims) onNodes(nodes []string) []*otherClaim {
	var found []*otherClaim
	for _, n := range nodes {
		for _, o := range c.by(indexStatusNode, n) {
			if !slices.Contains(found, o) {
				found = append(found, o)
			}
		}
	}
	return found
}

// OnNodes are the claims of the LoadBalancers on any of nodes.
func (c *claims) OnNodes(nodes []string) []resolve.Claim { return plain(c.onNodes(nodes)) }

// Load counts, for each of nodes, how many other LoadBalancers it leads
// or backs first.
func (c *claims) Load(nodes []string) priority.Load {
	load := priority.Load{}
	for _, o := range c.onNodes(nodes) {
		load.Add(o.priorities)
	}
	return load
}

// RouterIDUsed tells whether another LoadBalancer anywhere uses or asks
// for id.
func (c *claims) RouterIDUsed(id int32) bool {
	return slices.ContainsFunc(c.by(indexRouterID, strconv.Itoa(int(id))), func(o *otherClaim) bool {
		return o.RouterID == id || o.HeldRouterID == id
	})
}

// Siblings are the namespace's other LoadBalancers of class that count
// against its share: every contender, those the limit itself refuses
// included (with them left out, two waiting LoadBalancers could each find
// room for one and both be applied), but none refused for another reason.
func (c *claims) Siblings(class string) []resolve.Tenancy {
	items, err := listLoadBalancers(c.ctx, c.r.Client, client.InNamespace(c.self.Namespace))
	if err != nil {
		c.fail(err)
		return nil
	}
	var out []resolve.Tenancy
	for i := range items {
		other := &items[i]
		if other.UID == c.self.UID || other.DeletionTimestamp != nil {
			continue
		}
		if name, _ := resolve.ClassName(other, c.classes); name != class {
			continue
		}
		if !plan.RefusedForItsSpec(other) || plan.RefusedFor(other, v1alpha1.LoadBalancerLimitExceededReason) {
			out = append(out, plan.TenancyOf(other))
		}
	}
	return out
}

func plain(os []*otherClaim) []resolve.Claim {
	out := make([]resolve.Claim, len(os))
	for i, o := range os {
		out[i] = o.Claim
	}
	return out
}
