// Package vrrpfilter keeps one LoadBalancer's VRRP filter on a node: an
// nftables table that drops every advert for the LoadBalancer's router ID
// whose source is not one of its data-plane nodes. VRRPv3 has no
// authentication, and keepalived checks a multicast advert's sender only by
// its TTL: without the filter, any host on the segment (or a pod whose
// traffic reaches the node's interface) could send a priority-254 advert
// for the router ID and virtual IPs that `kubectl get` shows, and every
// node would give the virtual IPs up.
//
// The table is the pod's own (its name ends with the pod's UID), so a pod
// replacing another on the node never has its filter removed by the one
// going; a new pod removes the tables an earlier pod of the same router ID
// left behind (killed before it could). Nothing else on the node is read
// or changed.
package vrrpfilter

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ProtocolVRRP is VRRP's IP protocol number.
const ProtocolVRRP = 112

// tablePrefix starts the name of every table this package writes.
const tablePrefix = "hakeeper_vrrp_"

// Filter is one router ID's filter.
type Filter struct {
	// RouterID is the VRRP router ID the filter guards; adverts of other
	// router IDs are left to their own LoadBalancers' filters.
	RouterID uint8
	// IPv6 is the family VRRP runs on.
	IPv6 bool
	// Peers may send adverts for the router ID: the data-plane nodes'
	// addresses (link-local ones for IPv6 multicast), of the family.
	Peers []netip.Addr
}

// TableName is the table of a router ID's filter kept by one pod.
func TableName(routerID uint8, podUID string) string {
	return TablePrefix(routerID) + strings.ReplaceAll(podUID, "-", "")
}

// TablePrefix starts the name of every table of a router ID's filter.
func TablePrefix(routerID uint8) string {
	return tablePrefix + strconv.Itoa(int(routerID)) + "_"
}

// Validate checks the peers are of the filter's family.
func (f Filter) Validate() error {
	for _, p := range f.Peers {
		if p.Is4() == f.IPv6 || p.Is4In6() {
			return fmt.Errorf("peer %s is not of the VRRP family (IPv6: %v)", p, f.IPv6)
		}
	}
	return nil
}

// ParsePeers reads a peers file: one address per line.
func ParsePeers(data []byte) ([]netip.Addr, error) {
	var out []netip.Addr
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		a, err := netip.ParseAddr(line)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("line %d: %q is not an IP address", n, line)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// FormatPeers writes a peers file.
func FormatPeers(peers []string) []byte {
	var b strings.Builder
	for _, p := range peers {
		b.WriteString(p)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// Apply writes the filter as the table named table, replacing in one
// transaction whatever that table held (the peers change as nodes come
// and go), and removes the other tables of the same router ID: an
// earlier pod's that was killed before it could remove its own.
//
// It writes in the calling thread's network namespace: a process whose
// threads may be in different namespaces (a test) calls it from a
// goroutine locked to its thread.
func Apply(table string, f Filter) error {
	if err := f.Validate(); err != nil {
		return err
	}
	if !strings.HasPrefix(table, TablePrefix(f.RouterID)) {
		return fmt.Errorf("table %s is not named for router ID %d", table, f.RouterID)
	}
	c, tables, err := connectAndList()
	if err != nil {
		return err
	}
	defer func() { _ = c.CloseLasting() }()
	for _, t := range tables {
		if t.Name == table || strings.HasPrefix(t.Name, TablePrefix(f.RouterID)) {
			c.DelTable(t)
		}
	}
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: table})
	// Before anything else the node filters, so no accept of the node's
	// own rules lets a forged advert through.
	prio := nftables.ChainPriority(-300)
	policy := nftables.ChainPolicyAccept
	chain := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: &prio, Policy: &policy})
	keyType, nfproto, saddrOffset, saddrLen := nftables.TypeIPAddr, byte(unix.NFPROTO_IPV4), uint32(12), uint32(4)
	if f.IPv6 {
		keyType, nfproto, saddrOffset, saddrLen = nftables.TypeIP6Addr, byte(unix.NFPROTO_IPV6), 8, 16
	}
	set := &nftables.Set{Table: t, Name: "peers", KeyType: keyType, Constant: true}
	var elems []nftables.SetElement
	for _, p := range slices.Compact(slices.SortedFunc(slices.Values(f.Peers), netip.Addr.Compare)) {
		elems = append(elems, nftables.SetElement{Key: p.AsSlice()})
	}
	if err := c.AddSet(set, elems); err != nil {
		return err
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{nfproto}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{ProtocolVRRP}},
		// The router ID is the advert's second byte (VRRPv2 and v3).
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 1, Len: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.RouterID}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: saddrOffset, Len: saddrLen},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID, Invert: true},
		// Counted, so a test (or an operator) sees forged adverts arrive.
		&expr.Counter{},
		&expr.Verdict{Kind: expr.VerdictDrop},
	}})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("writing nftables table %s: %w", table, err)
	}
	return nil
}

// Remove deletes the table; a table that is not there is no error.
func Remove(table string) error {
	c, tables, err := connectAndList()
	if err != nil {
		return err
	}
	defer func() { _ = c.CloseLasting() }()
	i := slices.IndexFunc(tables, func(t *nftables.Table) bool { return t.Name == table })
	if i < 0 {
		return nil
	}
	c.DelTable(tables[i])
	return c.Flush()
}

// Dropped reads how many adverts the table's rule has dropped.
func Dropped(table string) (uint64, error) {
	c, err := nftables.New()
	if err != nil {
		return 0, err
	}
	defer func() { _ = c.CloseLasting() }()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: table}
	rules, err := c.GetRules(t, &nftables.Chain{Name: "input", Table: t})
	if err != nil {
		return 0, err
	}
	for _, r := range rules {
		for _, e := range r.Exprs {
			if counter, ok := e.(*expr.Counter); ok {
				return counter.Packets, nil
			}
		}
	}
	return 0, errors.New("no counter in table " + table)
}

// Tables lists the tables of a router ID's filter.
func Tables(routerID uint8) ([]string, error) {
	c, tables, err := connectAndList()
	if err != nil {
		return nil, err
	}
	defer func() { _ = c.CloseLasting() }()
	var out []string
	for _, t := range tables {
		if strings.HasPrefix(t.Name, TablePrefix(routerID)) {
			out = append(out, t.Name)
		}
	}
	return out, nil
}

// connectAndList connects and lists the inet tables; the caller closes
// the connection.
func connectAndList() (*nftables.Conn, []*nftables.Table, error) {
	c, err := nftables.New()
	if err != nil {
		return nil, nil, err
	}
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		_ = c.CloseLasting()
		return nil, nil, fmt.Errorf("listing nftables tables: %w", err)
	}
	return c, tables, nil
}
