package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/plan"
	"github.com/hakeeper/hakeeper/internal/render"
	"github.com/hakeeper/hakeeper/internal/resolve"
	"github.com/hakeeper/hakeeper/internal/validation"
)

// RenderOptions are the flags of `hakeeper render`.
type RenderOptions struct {
	File string
	// ClassFile holds LoadBalancerClasses; the LoadBalancer's (or the
	// default) gives the prefix lengths, interface and VRRP defaults.
	ClassFile string
	// PrefixLength of the virtual IPs without a class.
	PrefixLength int
	Nodes        []string
	Servers      []string
	Interface    string
	RouterID     int
	OutDir       string
	// NamespaceLabels are the LoadBalancer's namespace's labels, which a
	// class's namespaceSelector reads: KEY=VALUE.
	NamespaceLabels []string
	// Resolve answers DNS names as the operator's resolver would, where
	// the preview runs without it: NAME=IP[,IP...].
	Resolve []string

	// several: the file holds several LoadBalancers.
	several bool
}

// serverBackends are the backends --servers names.
func serverBackends(values []string) []string {
	var out []string
	for _, v := range values {
		if backend, _, ok := strings.Cut(v, "="); ok {
			out = append(out, backend)
		}
	}
	return out
}

// Validate checks the flags that need no file to be read.
func (o *RenderOptions) Validate() error {
	if o.File == "" {
		return errors.New("-f is required: the LoadBalancer YAML to render ('-' for stdin)")
	}
	if o.RouterID < 0 || o.RouterID > 255 {
		return fmt.Errorf("--router-id %d: must be between 1 and 255", o.RouterID)
	}
	return nil
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runRender(_ context.Context, args []string, s Streams) error {
	var o RenderOptions
	fs := newFlagSet("render", args, s)
	fs.StringVar(&o.File, "f", "", "YAML or JSON file of LoadBalancers (several documents, or a List as kubectl get -o yaml prints), or - for stdin")
	fs.StringVar(&o.ClassFile, "class", "", "YAML file with LoadBalancerClasses (for example config/samples/classes.yaml): the LoadBalancer's class gives prefix lengths, interface and VRRP defaults")
	fs.IntVar(&o.PrefixLength, "prefix-length", 0, "prefix length of the virtual IPs without --class (default 24 for IPv4, 64 for IPv6)")
	fs.Var((*listFlag)(&o.Nodes), "node", "a node that runs the load balancer: NAME=IP or NAME=IP@INTERFACE (repeat)")
	fs.Var((*listFlag)(&o.Servers), "servers", "endpoints of a backend's serviceRef: BACKEND=ADDR:PORT[,ADDR:PORT...] (repeat)")
	fs.StringVar(&o.Interface, "interface", "eth0", "interface of nodes given without @INTERFACE, when the class names none")
	fs.IntVar(&o.RouterID, "router-id", 0, "virtual router ID when spec.vrrp.virtualRouterID is empty, as if the operator had allocated it (default: a live LoadBalancer's status.virtualRouterID, else the first free: 1)")
	fs.Var((*listFlag)(&o.NamespaceLabels), "namespace-label", "a label of the LoadBalancer's namespace, which the class's namespaceSelector reads: KEY=VALUE (repeat; kubernetes.io/metadata.name is set)")
	fs.Var((*listFlag)(&o.Resolve), "resolve", "what a static server's DNS name resolves to where the operator runs: NAME=IP[,IP...] (repeat; other names are resolved here)")
	fs.StringVar(&o.OutDir, "out", "", "write DIR/haproxy.cfg and DIR/NODE/keepalived.conf (with several LoadBalancers, under DIR/NAMESPACE.NAME/) instead of printing")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: hakeeper render -f lb.yaml [--node NAME=IP[@IFACE]]... [--servers BACKEND=ADDR:PORT,...]... [--out DIR]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	lbs, err := readLoadBalancers(o.File, s.In)
	if err != nil {
		return err
	}
	others := &rendered{}
	if len(lbs) == 1 {
		return o.renderOne(lbs[0], others, o.OutDir, s)
	}
	// Several: each in turn, under a header, or in a directory of its own,
	// as if applied in that order: each sees those before it. --servers
	// names a backend of any of them.
	o.several = true
	for _, backend := range serverBackends(o.Servers) {
		if !slices.ContainsFunc(lbs, func(lb *v1alpha1.LoadBalancer) bool {
			return slices.ContainsFunc(lb.Spec.Backends, func(b v1alpha1.Backend) bool { return b.Name == backend && b.ServiceRef != nil })
		}) {
			return fmt.Errorf("--servers %s: no LoadBalancer of %s has a backend %s with a serviceRef", backend, o.File, backend)
		}
	}
	for _, lb := range lbs {
		dir := o.OutDir
		if dir != "" {
			dir = filepath.Join(dir, lb.Namespace+"."+lb.Name)
		} else {
			fmt.Fprintf(s.Out, "######## LoadBalancer %s/%s\n", lb.Namespace, lb.Name)
		}
		if err := o.renderOne(lb, others, dir, s); err != nil {
			return err
		}
	}
	return nil
}

// renderOne renders one LoadBalancer into dir, or to standard output,
// through the operator's own decision (plan.Decide) on inputs built from
// the files and flags: it refuses, allocates and names what the operator
// would in a cluster holding only the LoadBalancers rendered before it
// from the same file.
func (o *RenderOptions) renderOne(lb *v1alpha1.LoadBalancer, others *rendered, dir string, s Streams) error {
	in, err := o.inputs(lb)
	if err != nil {
		return err
	}
	others.deciding = lb.Namespace
	in.Others = others
	p, err := plan.Decide(context.Background(), in)
	var refusal *plan.Refusal
	if errors.As(err, &refusal) {
		causes := refusal.Causes
		if len(causes) == 0 {
			causes = []string{refusal.Message}
		}
		if refusal.Reason == v1alpha1.LoadBalancerInvalidSpecReason {
			return fmt.Errorf("invalid LoadBalancer %s/%s:\n  %s", lb.Namespace, lb.Name, strings.Join(causes, "\n  "))
		}
		return fmt.Errorf("the operator would refuse LoadBalancer %s/%s (%s):\n  %s", lb.Namespace, lb.Name, refusal.Reason, strings.Join(causes, "\n  "))
	}
	if err != nil {
		return err
	}
	if len(p.Nodes) == 0 {
		return fmt.Errorf("no node runs LoadBalancer %s/%s: the --node nodes lack an address of the virtual IPs' family", lb.Namespace, lb.Name)
	}
	// Applied anyway by the operator, reported as Degraded: said here.
	for _, m := range append(append([]string(nil), p.Missing...), p.Refused...) {
		fmt.Fprintf(s.Err, "warning: %s\n", m)
	}
	for _, n := range p.Pending {
		fmt.Fprintf(s.Err, "warning: node %s: keepalived.conf needs its agent's report (its IPv6 link-local address); not rendered\n", n)
	}
	others.add(lb, p)
	return write(files(p), dir, s.Out)
}

// readLoadBalancers reads every LoadBalancer of file ("-": stdin), as
// users have them: several YAML documents, a List as `kubectl get -o yaml`
// prints it, objects of other kinds beside them (skipped). Decoding is
// strict, and an error names the document and the field.
func readLoadBalancers(file string, stdin io.Reader) ([]*v1alpha1.LoadBalancer, error) {
	docs, err := readManifest(file, stdin)
	if err != nil {
		return nil, err
	}
	var out []*v1alpha1.LoadBalancer
	for _, d := range docs {
		if d.kind != "LoadBalancer" {
			continue
		}
		if d.apiVersion != v1alpha1.GroupVersion.String() {
			return nil, fmt.Errorf("%s: want apiVersion %s, got %q", d.describe(), v1alpha1.GroupVersion, d.apiVersion)
		}
		var lb v1alpha1.LoadBalancer
		if err := d.decode(&lb); err != nil {
			return nil, err
		}
		if lb.Namespace == "" {
			lb.Namespace = "default"
		}
		out = append(out, &lb)
	}
	if len(out) == 0 {
		if file == "-" {
			file = "stdin"
		}
		return nil, fmt.Errorf("%s holds no LoadBalancer (apiVersion %s, kind LoadBalancer)", file, v1alpha1.GroupVersion)
	}
	return out, nil
}

// readManifest reads file's documents ("-": stdin).
func readManifest(file string, stdin io.Reader) ([]document, error) {
	if file == "-" {
		return readDocuments("stdin", stdin)
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", file, err)
	}
	defer f.Close()
	return readDocuments(file, f)
}

// readClasses reads a YAML file of LoadBalancerClasses.
func readClasses(file string) ([]v1alpha1.LoadBalancerClass, error) {
	if file == "-" {
		return nil, errors.New("--class -: standard input is -f's; give the classes as a file")
	}
	docs, err := readManifest(file, nil)
	if err != nil {
		return nil, err
	}
	var classes []v1alpha1.LoadBalancerClass
	for _, d := range docs {
		if d.kind != "LoadBalancerClass" {
			continue
		}
		var c v1alpha1.LoadBalancerClass
		if err := d.decode(&c); err != nil {
			return nil, err
		}
		classes = append(classes, c)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("%s holds no LoadBalancerClass", file)
	}
	return classes, nil
}

// renderNodeLabel marks the --node nodes as the data-plane nodes of the
// class render makes up when --class is not given.
const renderNodeLabel = "hakeeper.io/render"

// inputs builds the decision's inputs from the files and flags: the
// classes (--class, or one made up that allows what the LoadBalancer asks
// for), its namespace (with --namespace-label), the --node nodes (labelled
// as the class and the LoadBalancer select them, their interfaces
// reported), --servers as the serviceRefs' Services and EndpointSlices,
// and a router ID (--router-id, else the one a live LoadBalancer's status
// shows, else allocated).
func (o *RenderOptions) inputs(lb *v1alpha1.LoadBalancer) (*plan.Inputs, error) {
	lookup, err := o.lookup()
	if err != nil {
		return nil, err
	}
	in := &plan.Inputs{LoadBalancer: lb, HealthBasePort: desired.DefaultHealthBasePort, Lookup: lookup}
	if o.ClassFile != "" {
		if in.Classes, err = readClasses(o.ClassFile); err != nil {
			return nil, err
		}
	} else if in.Classes, err = o.madeUpClass(lb); err != nil {
		return nil, err
	}
	in.Namespace = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: lb.Namespace,
		Labels: map[string]string{corev1.LabelMetadataName: lb.Namespace}}}
	for _, l := range o.NamespaceLabels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--namespace-label %q: want KEY=VALUE", l)
		}
		in.Namespace.Labels[k] = v
	}
	selector := map[string]string{renderNodeLabel: "true"}
	if name, err := resolve.ClassName(lb, in.Classes); err == nil {
		for i := range in.Classes {
			if in.Classes[i].Name == name {
				selector = in.Classes[i].Spec.DataPlane.NodeSelector
			}
		}
	}
	if in.Nodes, in.Reports, err = o.nodes(lb, selector); err != nil {
		return nil, err
	}
	if in.Services, err = services(lb, o.Servers, o.several); err != nil {
		return nil, err
	}
	if o.RouterID != 0 {
		in.Applied = &plan.Allocation{RouterID: int32(o.RouterID), VirtualIPs: lb.Status.VirtualIPs}
	}
	return in, nil
}

// lookup answers the names --resolve gives, and asks DNS for the others.
func (o *RenderOptions) lookup() (resolve.Lookup, error) {
	known := map[string][]netip.Addr{}
	for _, v := range o.Resolve {
		name, list, ok := strings.Cut(v, "=")
		if !ok || name == "" || list == "" {
			return nil, fmt.Errorf("--resolve %q: want NAME=IP[,IP...]", v)
		}
		for _, a := range strings.Split(list, ",") {
			addr, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("--resolve %s: %q is not an IP address", name, a)
			}
			known[name] = append(known[name], addr)
		}
	}
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		if addrs, ok := known[host]; ok {
			return addrs, nil
		}
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	}, nil
}

// madeUpClass is the class render decides under without --class: the
// LoadBalancer's virtual IPs are its pool (with --prefix-length, or the
// prefixes a live LoadBalancer's status shows), any namespace and server
// address the operator would take are allowed, and the --node nodes are
// its nodes. Rendering cannot allocate without a class: the addresses
// must be named.
func (o *RenderOptions) madeUpClass(lb *v1alpha1.LoadBalancer) ([]v1alpha1.LoadBalancerClass, error) {
	name := lb.Spec.ClassName
	if name == "" {
		name = "render"
	}
	class := v1alpha1.LoadBalancerClass{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{v1alpha1.AnnotationDefaultClass: "true"}},
		Spec:       v1alpha1.LoadBalancerClassSpec{DataPlane: v1alpha1.DataPlaneSpec{NodeSelector: map[string]string{renderNodeLabel: "true"}}},
	}
	pool := func(i int, addr netip.Addr, bits int) {
		class.Spec.VirtualIPPools = append(class.Spec.VirtualIPPools, v1alpha1.VirtualIPPool{Name: fmt.Sprintf("vip-%d", i),
			CIDR: netip.PrefixFrom(addr, addr.BitLen()).String(), PrefixLength: ptr.To(int32(bits))})
	}
	switch {
	case len(lb.Spec.VirtualIPs) > 0:
		for i, v := range lb.Spec.VirtualIPs {
			addr, err := validation.Unicast(v)
			if err != nil {
				return nil, fmt.Errorf("spec.virtualIPs[%d]: %s %w", i, v, err)
			}
			bits := o.PrefixLength
			if bits == 0 {
				bits = map[bool]int{true: 24, false: 64}[addr.Is4()]
			}
			if bits < 1 || bits > addr.BitLen() {
				return nil, fmt.Errorf("--prefix-length %d does not suit %s", bits, v)
			}
			pool(i, addr, bits)
		}
	case len(lb.Status.VirtualIPs) > 0:
		// A live LoadBalancer (kubectl get -o yaml) whose addresses the
		// operator allocated: they are in its status, with their prefixes.
		for i, v := range lb.Status.VirtualIPs {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("status.virtualIPs[%d]: %w", i, err)
			}
			pool(i, p.Addr(), p.Bits())
		}
	default:
		return nil, errors.New("spec.virtualIPs is empty: the operator would allocate addresses from its class's pools; pass --class, name them, or render the LoadBalancer as it runs (kubectl get -o yaml carries them in status)")
	}
	return []v1alpha1.LoadBalancerClass{class}, nil
}

// nodes makes the --node nodes, labelled so that the class and the
// LoadBalancer select them, each with its InternalIP, and the reports of
// their interfaces (@IFACE or --interface).
func (o *RenderOptions) nodes(lb *v1alpha1.LoadBalancer, classSelector map[string]string) ([]corev1.Node, map[string]contract.NodeReport, error) {
	if len(o.Nodes) == 0 {
		return nil, nil, errors.New("no nodes: pass --node NAME=IP for each node that runs the load balancer")
	}
	var nodes []corev1.Node
	reports := map[string]contract.NodeReport{}
	for _, v := range o.Nodes {
		name, rest, ok := strings.Cut(v, "=")
		if !ok || name == "" || rest == "" {
			return nil, nil, fmt.Errorf("--node %q: want NAME=IP or NAME=IP@INTERFACE", v)
		}
		addr, iface, _ := strings.Cut(rest, "@")
		if _, err := netip.ParseAddr(addr); err != nil {
			return nil, nil, fmt.Errorf("--node %q: %q is not an IP address", v, addr)
		}
		if iface == "" {
			iface = o.Interface
		}
		labels := map[string]string{}
		maps.Copy(labels, classSelector)
		maps.Copy(labels, lb.Spec.NodeSelector)
		nodes = append(nodes, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}}})
		reports[name] = contract.NodeReport{Interface: iface}
	}
	return nodes, reports, nil
}

// services makes, for each serviceRef, the Service it names and its
// EndpointSlices from --servers; a serviceRef without --servers names a
// Service that is not there, as the operator would find it.
func services(lb *v1alpha1.LoadBalancer, values []string, several bool) (map[string]plan.ServiceEndpoints, error) {
	endpoints, err := parseServers(values)
	if err != nil {
		return nil, err
	}
	out := map[string]plan.ServiceEndpoints{}
	for backend, eps := range endpoints {
		i := slices.IndexFunc(lb.Spec.Backends, func(b v1alpha1.Backend) bool { return b.Name == backend })
		if i < 0 || lb.Spec.Backends[i].ServiceRef == nil {
			if several {
				continue // another LoadBalancer of the file's
			}
			return nil, fmt.Errorf("--servers %s: no backend %s with a serviceRef", backend, backend)
		}
		ref := lb.Spec.Backends[i].ServiceRef
		port := corev1.ServicePort{Name: "port", Port: 80}
		if ref.Port.Type == intstr.String {
			port.Name = ref.Port.StrVal
		} else {
			port.Port = ref.Port.IntVal
		}
		se := plan.ServiceEndpoints{Service: &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: lb.Namespace, Name: ref.Name},
			Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{port}}}}
		// One EndpointSlice per address family and target port, as
		// Kubernetes groups them.
		type group struct {
			family discoveryv1.AddressType
			port   int32
		}
		groups := map[group][]discoveryv1.Endpoint{}
		var order []group
		for _, ep := range eps {
			g := group{discoveryv1.AddressTypeIPv4, ep.Port}
			if strings.Contains(ep.Address, ":") {
				g.family = discoveryv1.AddressTypeIPv6
			}
			if _, seen := groups[g]; !seen {
				order = append(order, g)
			}
			groups[g] = append(groups[g], discoveryv1.Endpoint{Addresses: []string{ep.Address}})
		}
		for _, g := range order {
			se.Slices = append(se.Slices, discoveryv1.EndpointSlice{AddressType: g.family, Endpoints: groups[g],
				Ports: []discoveryv1.EndpointPort{{Name: ptr.To(port.Name), Port: ptr.To(g.port)}}})
		}
		out[ref.Name] = se
	}
	return out, nil
}

func parseServers(values []string) (map[string][]render.Endpoint, error) {
	out := map[string][]render.Endpoint{}
	for _, v := range values {
		backend, list, ok := strings.Cut(v, "=")
		if !ok || backend == "" {
			return nil, fmt.Errorf("--servers %q: want BACKEND=ADDR:PORT[,ADDR:PORT...]", v)
		}
		for _, hp := range strings.Split(list, ",") {
			ap, err := netip.ParseAddrPort(hp)
			if err != nil || ap.Port() == 0 {
				return nil, fmt.Errorf("--servers %s: %q is not IP:PORT ([IPv6]:PORT for IPv6)", backend, hp)
			}
			out[backend] = append(out[backend], render.Endpoint{Address: ap.Addr().String(), Port: int32(ap.Port())})
		}
	}
	return out, nil
}

type renderedFile struct {
	path    string // relative to --out
	comment string // header when printing
	data    []byte
}

// files are the plan's configs: haproxy.cfg and each node's
// keepalived.conf.
func files(p *plan.Plan) []renderedFile {
	out := []renderedFile{{contract.HAProxyConfigFile, "haproxy.cfg, the same on every node", p.HAProxyConfig}}
	for _, n := range p.Nodes {
		conf, ok := p.Keepalived[n.Name]
		if !ok {
			continue
		}
		out = append(out, renderedFile{
			path:    filepath.Join(n.Name, contract.KeepalivedConfigFile),
			comment: "keepalived.conf on node " + n.Name + ", priority " + strconv.Itoa(int(n.Priority)),
			data:    conf,
		})
	}
	return out
}

func write(files []renderedFile, dir string, out io.Writer) error {
	if dir == "" {
		for _, f := range files {
			fmt.Fprintf(out, "#### %s\n%s\n", f.comment, f.data)
		}
		return nil
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return err
		}
		fmt.Fprintln(out, p)
	}
	return nil
}
