package docs

import (
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestCheckerCatchesDrift shows the checker can fail: each case breaks a
// copy of the reference, of a CRD schema or of the API's constants the
// way a forgotten update would, and expects the problem naming it. The
// edits find rows by heading and field cell, not by line number.

// docLines is the reference being edited.
type docLines struct {
	t     *testing.T
	lines []string
}

// heading is the index of the line that is exactly h.
func (d *docLines) heading(h string) int {
	d.t.Helper()
	i := slices.Index(d.lines, h)
	if i < 0 {
		d.t.Fatalf("docs/api.md has no heading %q: update the mutation", h)
	}
	return i
}

// row is the index of the first table row after heading h whose first
// cell is field.
func (d *docLines) row(h, field string) int {
	d.t.Helper()
	for i := d.heading(h) + 1; i < len(d.lines); i++ {
		if strings.HasPrefix(d.lines[i], "|") {
			if cells := splitRow(d.lines[i]); len(cells) > 0 && cells[0] == field {
				return i
			}
		}
	}
	d.t.Fatalf("docs/api.md has no row %s after %q: update the mutation", field, h)
	return -1
}

// set replaces the cell of column col (0-based) in the row.
func (d *docLines) set(h, field string, col int, value string) {
	d.t.Helper()
	i := d.row(h, field)
	cells := splitRow(d.lines[i])
	cells[col] = value
	for j := range cells {
		cells[j] = strings.ReplaceAll(cells[j], "|", `\|`)
	}
	d.lines[i] = "| " + strings.Join(cells, " | ") + " |"
}

func (d *docLines) delete(h, field string) {
	d.t.Helper()
	i := d.row(h, field)
	d.lines = slices.Delete(d.lines, i, i+1)
}

func (d *docLines) insertAfter(h, field, line string) {
	d.t.Helper()
	i := d.row(h, field)
	d.lines = slices.Insert(d.lines, i+1, line)
}

func (d *docLines) replaceLine(old, new string) {
	d.t.Helper()
	d.lines[d.heading(old)] = new
}

// prop walks a schema down spec or status by property names (items are
// transparent).
func prop(t *testing.T, s *schema, path string) *schema {
	t.Helper()
	for _, name := range strings.Split(path, ".") {
		next := elem(s).Properties[name]
		if next == nil {
			t.Fatalf("the CRD has no %s: update the mutation", path)
		}
		s = next
	}
	return s
}

func int64p(v int64) *int64 { return &v }

func TestCheckerCatchesDrift(t *testing.T) {
	const (
		lbH      = "# LoadBalancer"
		classH   = "# LoadBalancerClass"
		vrrpH    = "### vrrp"
		listH    = "### listeners"
		backH    = "### backends"
		checkH   = "### healthCheck"
		statusH  = "# Status and conditions"
		reasonsH = "## Reasons"
		typeCol  = 1
		defCol   = 2
		rulesCol = 3
	)
	cases := []struct {
		name   string
		doc    func(d *docLines)
		schema func(t *testing.T, kinds map[string]*schema)
		api    func(in *inputs)
		want   string
	}{
		{
			name: "a CRD field the reference lacks",
			doc:  func(d *docLines) { d.delete(listH, "`port`") },
			want: "LoadBalancer spec.listeners[].port is in the CRD but not in the reference",
		},
		{
			name: "a documented field the CRD lacks",
			doc:  func(d *docLines) { d.insertAfter(listH, "`port`", "| `portRange` | int32 | | |") },
			want: "`portRange` is documented, but the CRD has no spec.listeners[].portRange",
		},
		{
			name: "an enum value left out",
			doc:  func(d *docLines) { d.set(backH, "`balance`", typeCol, "`RoundRobin` | `LeastConn`") },
			want: "LoadBalancer spec.backends[].balance: the doc gives `RoundRobin` | `LeastConn`, the CRD allows",
		},
		{
			name: "an enum documented as a plain type",
			doc:  func(d *docLines) { d.set(vrrpH, "`version`", typeCol, "int32") },
			want: "LoadBalancer spec.vrrp.version: the CRD allows only `2` | `3`",
		},
		{
			name: "a wrong type",
			doc:  func(d *docLines) { d.set(listH, "`port`", typeCol, "string") },
			want: `LoadBalancer spec.listeners[].port: the doc says "string", the CRD has int32`,
		},
		{
			name: "a wrong integer width",
			doc:  func(d *docLines) { d.set(listH, "`port`", typeCol, "int64") },
			want: `LoadBalancer spec.listeners[].port: the doc says "int64", the CRD has int32`,
		},
		{
			name: "a map list keyed by the wrong field",
			doc: func(d *docLines) {
				d.set(lbH, "`listeners`", typeCol, "list of [Listener](#listeners), keyed by `port`")
			},
			want: "LoadBalancer spec.listeners: the CRD keys the list by `name`",
		},
		{
			name: "a numeric default that is not the API's",
			doc:  func(d *docLines) { d.set(checkH, "`rise` / `fall`", defCol, "2 / 4") },
			want: "LoadBalancer spec.backends[].healthCheck.fall: the doc's default says 4, api/v1alpha1.DefaultCheckFall is 3",
		},
		{
			name: "a string default that is not the API's",
			doc:  func(d *docLines) { d.set(checkH, "`path`", defCol, "`/healthz`") },
			want: "api/v1alpha1.DefaultCheckPath",
		},
		{
			name: "a class default that is not the API's",
			doc:  func(d *docLines) { d.set(classH, "`limits.maxServerSlots`", defCol, "128") },
			want: "LoadBalancerClass spec.limits.maxServerSlots: the doc's default says 128, api/v1alpha1.DefaultMaxServerSlots is 256",
		},
		{
			name: "a wrong item bound",
			doc:  func(d *docLines) { d.set(lbH, "`listeners`", rulesCol, "1–31; ports unique") },
			want: "LoadBalancer spec.listeners: the doc says 1–31, the CRD bounds its items to 1–32",
		},
		{
			name: "a wrong bound of a subfield",
			doc:  func(d *docLines) { d.set(vrrpH, "`priorities`", rulesCol, "priority 1–255, ≤64 entries") },
			want: "LoadBalancer spec.vrrp.priorities[].priority: the doc says 1–255, the CRD bounds its value to 1–254",
		},
		{
			name: "a wrong length bound",
			doc:  func(d *docLines) { d.set(classH, "`dataPlane.interface`", rulesCol, "≤16") },
			want: "LoadBalancerClass spec.dataPlane.interface: the doc says ≤16, the CRD bounds its length to 0–15",
		},
		{
			name: "a wrong multiple",
			doc: func(d *docLines) {
				d.set(vrrpH, "`advertIntervalMilliseconds`", rulesCol, "10–40950, multiple of 100")
			},
			want: "LoadBalancer spec.vrrp.advertIntervalMilliseconds: the doc says multiple of 100, the CRD has multipleOf 10",
		},
		{
			name: "an optional field documented as required",
			doc:  func(d *docLines) { d.set(listH, "`defaultBackend`", defCol, "required") },
			want: "LoadBalancer spec.listeners[].defaultBackend: the doc says required, the CRD does not require it",
		},
		{
			name: "a required field not documented as required",
			doc:  func(d *docLines) { d.set(checkH, "`type`", defCol, "HTTP") },
			want: "LoadBalancer spec.backends[].healthCheck.type: the CRD requires it",
		},
		{
			name: "a link to another field's section",
			doc:  func(d *docLines) { d.set(backH, "`healthCheck`", typeCol, "[HealthCheck](#servers)") },
			want: "LoadBalancer spec.backends[].healthCheck: links to #servers",
		},
		{
			name: "a heading that names no field",
			doc:  func(d *docLines) { d.replaceLine(checkH, "### healthChecks") },
			want: `the heading "healthChecks"`,
		},
		{
			name: "a {…} type missing a field",
			doc:  func(d *docLines) { d.set(listH, "`routes`", typeCol, "list of `{host, backend}`") },
			want: "LoadBalancer spec.listeners[].routes[].pathPrefix is in the CRD but not in the doc's {…}",
		},
		{
			name: "the wrong Kubernetes type",
			doc:  func(d *docLines) { d.set(classH, "`namespaceSelector`", typeCol, "Toleration") },
			want: `LoadBalancerClass spec.namespaceSelector: the doc says "Toleration"`,
		},
		{
			name: "a status field without its row",
			doc:  func(d *docLines) { d.delete(lbH, "`nodes[].vrrpTransitions`") },
			want: "LoadBalancer status.nodes[].vrrpTransitions is in the CRD but not in the reference",
		},
		{
			name: "a reason without its row",
			doc:  func(d *docLines) { d.delete(reasonsH, "`SplitBrain`") },
			want: `api/v1alpha1.LoadBalancerSplitBrainReason ("SplitBrain") is not in the reason table`,
		},
		{
			name: "a reason the API does not have",
			doc:  func(d *docLines) { d.insertAfter(reasonsH, "`SplitBrain`", "| `Flapping` | `Degraded` True | | |") },
			want: "reason `Flapping` is listed, but api/v1alpha1 declares no such reason",
		},
		{
			name: "a condition type without its row",
			doc:  func(d *docLines) { d.delete(statusH, "`Stalled`") },
			want: `api/v1alpha1.LoadBalancerStalledCondition ("Stalled") is not in the condition table`,
		},
		{
			name: "a link to no heading",
			doc:  func(d *docLines) { d.set(lbH, "`vrrp`", typeCol, "[VRRPSpec](#vrrp-spec)") },
			want: "link to #vrrp-spec: no heading has that anchor",
		},
		{
			name: "a field added to the CRD",
			schema: func(t *testing.T, kinds map[string]*schema) {
				prop(t, kinds[lb], "spec.vrrp").Properties["garpRepeat"] = &schema{Type: "integer", Format: "int32"}
			},
			want: "LoadBalancer spec.vrrp.garpRepeat is in the CRD but not in the reference",
		},
		{
			name: "a field removed from the CRD",
			schema: func(t *testing.T, kinds map[string]*schema) {
				delete(prop(t, kinds[class], "spec.limits").Properties, "maxServerSlots")
			},
			want: "`limits.maxServerSlots` is documented, but the CRD has no spec.limits.maxServerSlots",
		},
		{
			name: "a CRD bound changed",
			schema: func(t *testing.T, kinds map[string]*schema) {
				prop(t, kinds[lb], "spec.listeners").MaxItems = int64p(48)
			},
			want: "LoadBalancer spec.listeners: the doc says 1–32, the CRD bounds its items to 1–48",
		},
		{
			name: "a CRD enum grown",
			schema: func(t *testing.T, kinds map[string]*schema) {
				s := prop(t, kinds[lb], "spec.backends.balance")
				s.Enum = append(s.Enum, "Random")
			},
			want: "LoadBalancer spec.backends[].balance: the doc gives",
		},
		{
			name: "a default constant changed",
			api: func(in *inputs) {
				in.defaults = slices.Clone(in.defaults)
				for i, d := range in.defaults {
					if d.name == "DefaultCheckRise" {
						in.defaults[i].value = 5
					}
				}
			},
			want: "LoadBalancer spec.backends[].healthCheck.rise: the doc's default says 2, api/v1alpha1.DefaultCheckRise is 5",
		},
		{
			name: "a reason constant added",
			api: func(in *inputs) {
				in.reasons = maps.Clone(in.reasons)
				in.reasons["LoadBalancerFlappingReason"] = "Flapping"
			},
			want: `api/v1alpha1.LoadBalancerFlappingReason ("Flapping") is not in the reason table`,
		},
		{
			name: "a default mapped to a field the CRD lacks",
			api: func(in *inputs) {
				in.defaults = append(slices.Clone(in.defaults), apiDefault{"DefaultGarpRepeat", 5, []target{{lb, "spec.vrrp.garpRepeat"}}})
			},
			want: "the defaults table maps DefaultGarpRepeat to LoadBalancer spec.vrrp.garpRepeat, which the CRD does not have",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := realInputs(t)
			if tc.doc != nil {
				d := &docLines{t: t, lines: strings.Split(in.doc, "\n")}
				tc.doc(d)
				in.doc = strings.Join(d.lines, "\n")
			}
			if tc.schema != nil {
				tc.schema(t, in.kinds)
			}
			if tc.api != nil {
				tc.api(&in)
			}
			problems := check(in)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, tc.want) }) {
				t.Errorf("no problem contains %q; got:\n%s", tc.want, strings.Join(problems, "\n"))
			}
		})
	}
}

// TestReadsTheReferenceAsWritten pins the parts of the reading the
// mutations above rely on.
func TestReadsTheReferenceAsWritten(t *testing.T) {
	if got := splitRow("| `a` | `A` \\| `B` | x |"); !slices.Equal(got, []string{"`a`", "`A` | `B`", "x"}) {
		t.Errorf("splitRow: %q", got)
	}
	if got, err := parseFieldCell("`timeouts.clientSeconds` / `serverSeconds`"); err != nil ||
		!slices.Equal(got, []string{"timeouts.clientSeconds", "timeouts.serverSeconds"}) {
		t.Errorf("parseFieldCell: %q, %v", got, err)
	}
	if _, err := parseFieldCell("`a` and `b`"); err == nil {
		t.Error("parseFieldCell accepted prose between paths")
	}
	te, err := parseType("list of `{secretRef: {name}, minVersion}`, keyed by `name`")
	if err != nil || !te.list || te.keyedBy != "name" || te.kind != "braces" || len(te.braces) != 2 || len(te.braces[0].sub) != 1 {
		t.Errorf("parseType: %+v, %v", te, err)
	}
	if _, err := parseType("a list of things"); err == nil {
		t.Error("parseType accepted an unknown type")
	}
	if got := integers("the class's `vrrp.x`, else 50 (0.2 s, 2xx, 100m)"); !slices.Equal(got, []string{"50"}) {
		t.Errorf("integers: %q", got)
	}
	if got := slug("Status and conditions"); got != "status-and-conditions" {
		t.Errorf("slug: %q", got)
	}
}
