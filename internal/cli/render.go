package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hakeeper/hakeeper/api/v1alpha1"
	"github.com/hakeeper/hakeeper/internal/contract"
	"github.com/hakeeper/hakeeper/internal/desired"
	"github.com/hakeeper/hakeeper/internal/priority"
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
	fs.IntVar(&o.RouterID, "router-id", 0, "virtual router ID when spec.vrrp.virtualRouterID is empty (the operator allocates one; default 1)")
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
	if len(lbs) == 1 {
		return o.renderOne(lbs[0], o.OutDir, s)
	}
	// Several: each in turn, under a header, or in a directory of its own.
	for _, lb := range lbs {
		dir := o.OutDir
		if dir != "" {
			dir = filepath.Join(dir, lb.Namespace+"."+lb.Name)
		} else {
			fmt.Fprintf(s.Out, "######## LoadBalancer %s/%s\n", lb.Namespace, lb.Name)
		}
		if err := o.renderOne(lb, dir, s); err != nil {
			return err
		}
	}
	return nil
}

// renderOne renders one LoadBalancer into dir, or to standard output.
func (o *RenderOptions) renderOne(lb *v1alpha1.LoadBalancer, dir string, s Streams) error {
	var class *v1alpha1.LoadBalancerClass
	var err error
	if o.ClassFile != "" {
		if class, err = readClass(o.ClassFile, lb); err != nil {
			return err
		}
	}
	in, err := o.input(lb, class)
	if err != nil {
		return err
	}
	if class != nil {
		if err := admit(class, lb, &in); err != nil {
			return err
		}
	}
	if errs := render.Validate(&in); len(errs) > 0 {
		return fmt.Errorf("invalid LoadBalancer %s/%s:\n  %s", lb.Namespace, lb.Name, joinErrors(errs.ToAggregate().Errors()))
	}
	files, err := renderAll(in)
	if err != nil {
		return err
	}
	return write(files, dir, s.Out)
}

// admit refuses what the operator refuses under the class, with the same
// code (resolve.Admit): the class's limits and kinds of servers, servers
// and --servers endpoints at addresses the class refuses (the --node
// addresses are the nodes'), and names that resolve, here, to one. The
// operator resolves names where it runs; what they resolve to here may
// differ.
func admit(class *v1alpha1.LoadBalancerClass, lb *v1alpha1.LoadBalancer, in *render.Input) error {
	pools, err := resolve.Pools(class)
	if err != nil {
		return err
	}
	nodes := map[netip.Addr]string{}
	for _, n := range in.Nodes {
		if a, err := netip.ParseAddr(n.Address); err == nil {
			nodes[a] = n.Name
		}
	}
	policy, err := resolve.NewBackendPolicy(class, pools, nodes)
	if err != nil {
		return err
	}
	adm := resolve.Admit(context.Background(), class, policy, &lb.Spec, func(ctx context.Context, host string) ([]netip.Addr, error) {
		return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	})
	var refused []string
	for _, e := range adm.Errors {
		refused = append(refused, e.Error())
	}
	refused = append(append(refused, adm.LeftOut...), adm.Unresolved...)
	for i := range adm.Spec.Backends {
		b := &adm.Spec.Backends[i]
		if b.ServiceRef == nil {
			continue
		}
		_, leftOut := policy.AdmitEndpoints(b, in.Endpoints[b.Name])
		refused = append(refused, leftOut...)
	}
	if len(refused) > 0 {
		return fmt.Errorf("LoadBalancerClass %s refuses LoadBalancer %s/%s:\n  %s", class.Name, lb.Namespace, lb.Name, strings.Join(refused, "\n  "))
	}
	in.Spec = adm.Spec
	return nil
}

func joinErrors(errs []error) string {
	lines := make([]string, len(errs))
	for i, e := range errs {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n  ")
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

// readClass finds the LoadBalancer's class, by name or as the default, in
// a YAML file of LoadBalancerClasses.
func readClass(file string, lb *v1alpha1.LoadBalancer) (*v1alpha1.LoadBalancerClass, error) {
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
	name, err := resolve.ClassName(lb, classes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	for i := range classes {
		if classes[i].Name == name {
			return &classes[i], nil
		}
	}
	return nil, fmt.Errorf("%s has no LoadBalancerClass %s", file, name)
}

// virtualIPs are the requested addresses with the class's prefix lengths,
// or --prefix-length. Rendering cannot allocate: it needs them requested.
func (o *RenderOptions) virtualIPs(lb *v1alpha1.LoadBalancer, class *v1alpha1.LoadBalancerClass) ([]netip.Prefix, error) {
	if len(lb.Spec.VirtualIPs) == 0 && len(lb.Status.VirtualIPs) > 0 {
		// A live LoadBalancer (kubectl get -o yaml) whose addresses the
		// operator allocated: they are in its status, with their prefixes.
		var out []netip.Prefix
		for i, v := range lb.Status.VirtualIPs {
			p, err := netip.ParsePrefix(v)
			if err != nil {
				return nil, fmt.Errorf("status.virtualIPs[%d]: %w", i, err)
			}
			out = append(out, p)
		}
		return out, nil
	}
	if len(lb.Spec.VirtualIPs) == 0 {
		return nil, errors.New("spec.virtualIPs is empty: the operator would allocate addresses; name them to render (or render the LoadBalancer as it runs: kubectl get -o yaml carries them in status)")
	}
	if class != nil {
		pools, err := resolve.Pools(class)
		if err != nil {
			return nil, err
		}
		return resolve.AssignVirtualIPs(resolve.VIPInput{Class: class.Name, Requested: lb.Spec.VirtualIPs, Pools: pools})
	}
	var out []netip.Prefix
	for i, s := range lb.Spec.VirtualIPs {
		addr, err := validation.Unicast(s)
		if err != nil {
			return nil, fmt.Errorf("spec.virtualIPs[%d]: %s %w", i, s, err)
		}
		bits := o.PrefixLength
		if bits == 0 {
			bits = map[bool]int{true: 24, false: 64}[addr.Is4()]
		}
		if bits < 1 || bits > addr.BitLen() {
			return nil, fmt.Errorf("--prefix-length %d does not suit %s", bits, s)
		}
		out = append(out, netip.PrefixFrom(addr, bits))
	}
	return out, nil
}

func (o *RenderOptions) input(lb *v1alpha1.LoadBalancer, class *v1alpha1.LoadBalancerClass) (render.Input, error) {
	in := render.Input{Name: lb.Name, Namespace: lb.Namespace, Spec: lb.Spec}
	if class != nil {
		in.Spec = class.WithClassDefaults(lb.Spec)
		in.Interface = class.Spec.DataPlane.Interface
		if g := class.Spec.VRRP.MulticastGroups; g != nil {
			in.MulticastGroups = *g
		}
	}
	vips, err := o.virtualIPs(lb, class)
	if err != nil {
		return in, err
	}
	in.VirtualIPs = vips
	in.VirtualRouterID = int32(max(o.RouterID, 1))
	if o.RouterID == 0 && lb.Status.VirtualRouterID != 0 {
		in.VirtualRouterID = lb.Status.VirtualRouterID // the one the operator allocated
	}
	if id := lb.Spec.VRRP.VirtualRouterID; id != nil {
		in.VirtualRouterID = *id
	}
	// As the operator renders it with its default ports.
	_, in.HealthPort = desired.HealthPorts(desired.DefaultHealthBasePort, in.VirtualRouterID)
	nodes, err := o.nodes(&in)
	if err != nil {
		return in, err
	}
	in.Nodes = nodes
	in.Endpoints, err = parseServers(o.Servers)
	return in, err
}

// nodes parses --node, or takes the nodes spec.vrrp.priorities names when
// none is given and VRRP is multicast (no addresses needed).
func (o *RenderOptions) nodes(in *render.Input) ([]render.Node, error) {
	var nodes []render.Node
	for _, v := range o.Nodes {
		name, rest, ok := strings.Cut(v, "=")
		if !ok || name == "" || rest == "" {
			return nil, fmt.Errorf("--node %q: want NAME=IP or NAME=IP@INTERFACE", v)
		}
		addr, iface, _ := strings.Cut(rest, "@")
		nodes = append(nodes, render.Node{Name: name, Address: addr, Interface: iface})
	}
	if len(nodes) == 0 {
		if in.Spec.VRRP.Mode == v1alpha1.VRRPModeUnicast || len(in.Spec.VRRP.Priorities) == 0 {
			return nil, errors.New("no nodes: pass --node NAME=IP for each node that runs the load balancer")
		}
		for _, p := range in.Spec.VRRP.Priorities {
			nodes = append(nodes, render.Node{Name: p.Node})
		}
	}
	names := make([]string, len(nodes))
	for i := range nodes {
		names[i] = nodes[i].Name
		if nodes[i].Interface == "" {
			nodes[i].Interface = o.Interface
		}
	}
	prios := priority.Assign(in.Spec.VRRP.Priorities, names, nil, nil)
	for i := range nodes {
		nodes[i].Priority = prios[nodes[i].Name]
	}
	return nodes, nil
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

func renderAll(in render.Input) ([]renderedFile, error) {
	cfg, err := render.HAProxyConfig(in)
	if err != nil {
		return nil, err
	}
	files := []renderedFile{{contract.HAProxyConfigFile, "haproxy.cfg, the same on every node", cfg}}
	for _, n := range in.Nodes {
		conf, err := render.KeepalivedConfig(in, n.Name)
		if err != nil {
			return nil, err
		}
		files = append(files, renderedFile{
			path:    filepath.Join(n.Name, contract.KeepalivedConfigFile),
			comment: "keepalived.conf on node " + n.Name + ", priority " + strconv.Itoa(int(n.Priority)),
			data:    conf,
		})
	}
	return files, nil
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
