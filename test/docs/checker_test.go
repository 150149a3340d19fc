package docs

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// The checker compares docs/api.md with the CRDs' schemas and the API's
// constants. How it reads the reference:
//
//   - A level-1 heading named after a kind (# LoadBalancer) starts that
//     kind; ## spec and ## status under it are the roots. A deeper heading
//     names a field under its parent section: a direct child (### vrrp is
//     spec.vrrp), else the one field of that name further down
//     (### healthCheck is spec.backends.healthCheck), else a dotted path.
//   - A table whose first column is "field" documents fields of its
//     section. Its field cell holds backticked paths relative to the
//     section, several separated by / or , (`rise` / `fall`; a later path
//     without a dot is a sibling of the first). `x[]` marks a list: inside a
//     path it is required where the field is a list, at the end it says the
//     type column describes the items.
//   - The type column: string, int32, int64, bool, map, int or string,
//     object, `A` | `B` (the enum), [Name](#anchor) (an object documented
//     in that section), `{a, b: {c}}` (an object with exactly these
//     fields), a Kubernetes type (LabelSelector, Toleration,
//     ResourceRequirements, Condition: its fields are not listed), or
//     "list of" any of these, with ", keyed by `k`" for a map list.
//   - The default column: "required" must match the schema's required;
//     numbers (or, for a string default, backticked values) stated for a
//     field with an API default constant must equal it. For a row with n
//     paths, a default of n parts separated by " / " is one per path.
//   - The rules column: A–B, ≤N and "multiple of N" are bounds: items for a
//     list, length for a string, entries for a map, value for an integer.
//     A bound right after a subfield's name (priority 1–254) is that
//     subfield's.
//   - Tables whose first column is "condition" or "reason" list the API's
//     condition types and reasons, each in backticks.

type target struct{ kind, path string }

// apiDefault is a default constant of the API and the fields it is the
// default of.
type apiDefault struct {
	name    string
	value   any
	targets []target
}

type inputs struct {
	docName      string // for messages
	doc          string
	groupVersion string
	kinds        map[string]*schema
	defaults     []apiDefault
	conditions   map[string]string // constant name to value
	reasons      map[string]string
}

type section struct {
	kind *kindSchema
	f    *field // nil for the kind's own heading
}

type statedDefault struct {
	text string
	line int
}

type checker struct {
	in         inputs
	doc        *mdDoc
	kinds      map[string]*kindSchema
	kindNames  []string
	sections   map[*mdHeading]*section
	unresolved map[*mdHeading]string
	documented map[string]map[string]int // kind, path: line
	opaque     map[string]map[string]bool
	stated     map[string]map[string]statedDefault
	problems   []string
}

// check returns every disagreement between the reference and the API.
func check(in inputs) []string {
	c := &checker{
		in:         in,
		kinds:      map[string]*kindSchema{},
		sections:   map[*mdHeading]*section{},
		unresolved: map[*mdHeading]string{},
		documented: map[string]map[string]int{},
		opaque:     map[string]map[string]bool{},
		stated:     map[string]map[string]statedDefault{},
	}
	for kind, s := range in.kinds {
		c.kinds[kind] = newKindSchema(kind, s)
		c.kindNames = append(c.kindNames, kind)
		c.documented[kind] = map[string]int{}
		c.opaque[kind] = map[string]bool{}
		c.stated[kind] = map[string]statedDefault{}
	}
	sort.Strings(c.kindNames)
	var problems []string
	c.doc, problems = parseMarkdown(in.doc)
	c.problems = append(c.problems, problems...)
	c.resolveSections()
	c.checkHeadingsAndLinks()
	for _, t := range c.doc.tables {
		if len(t.header) > 0 && t.header[0] == "field" {
			c.checkFieldTable(t)
		}
	}
	c.checkCoverage()
	c.checkDefaults()
	c.checkConstantTable("condition", "condition type", in.conditions)
	c.checkConstantTable("reason", "reason", in.reasons)
	return c.problems
}

// errf records a problem at a line of the reference (0: the whole file).
func (c *checker) errf(line int, format string, args ...any) {
	at := c.in.docName + ": "
	if line > 0 {
		at = fmt.Sprintf("%s:%d: ", c.in.docName, line)
	}
	c.problems = append(c.problems, at+fmt.Sprintf(format, args...))
}

func (c *checker) resolveSections() {
	for _, h := range c.doc.headings {
		if h.level == 1 {
			if k, ok := c.kinds[h.text]; ok {
				c.sections[h] = &section{kind: k}
			}
			continue
		}
		if h.parent == nil {
			continue
		}
		p := c.sections[h.parent]
		if p == nil {
			continue
		}
		if p.f == nil {
			if h.text == "spec" || h.text == "status" {
				if f := p.kind.fields[h.text]; f != nil {
					c.sections[h] = &section{kind: p.kind, f: f}
					continue
				}
				c.unresolved[h] = fmt.Sprintf("the %s CRD has no %s", p.kind.kind, h.text)
				continue
			}
			c.unresolved[h] = fmt.Sprintf("under a kind, a section is spec or status, not %q", h.text)
			continue
		}
		f, err := resolveHeading(p.kind, p.f, h.text)
		if err != nil {
			c.unresolved[h] = err.Error()
			continue
		}
		c.sections[h] = &section{kind: p.kind, f: f}
	}
}

// resolveHeading finds the field a heading names under base.
func resolveHeading(k *kindSchema, base *field, text string) (*field, error) {
	name := strings.ReplaceAll(strings.TrimSpace(text), "[]", "")
	if f := k.fields[base.path+"."+name]; f != nil {
		return f, nil
	}
	if strings.Contains(name, ".") {
		return nil, fmt.Errorf("%s %s has no field %s", k.kind, base.display, name)
	}
	var found []string
	for p, f := range k.fields {
		if strings.HasPrefix(p, base.path+".") && f.name == name {
			found = append(found, p)
		}
	}
	sort.Strings(found)
	switch len(found) {
	case 1:
		return k.fields[found[0]], nil
	case 0:
		return nil, fmt.Errorf("%s %s has no field %s at any depth", k.kind, base.display, name)
	}
	var ds []string
	for _, p := range found {
		ds = append(ds, k.fields[p].display)
	}
	return nil, fmt.Errorf("%s is ambiguous under %s %s (%s): name the path in the heading", name, k.kind, base.display, strings.Join(ds, ", "))
}

func (c *checker) checkHeadingsAndLinks() {
	if c.in.groupVersion != "" {
		found := false
		for _, h := range c.doc.headings {
			if h.level == 1 && strings.Contains(h.text, c.in.groupVersion) {
				found = true
			}
		}
		if !found {
			c.errf(0, "no level-1 heading names the API version %s", c.in.groupVersion)
		}
	}
	for _, kind := range c.kindNames {
		found := false
		for _, s := range c.sections {
			if s.kind.kind == kind && s.f == nil {
				found = true
			}
		}
		if !found {
			c.errf(0, "no `# %s` heading: the %s CRD is not documented", kind, kind)
		}
	}
	for _, l := range c.doc.links {
		if c.doc.anchors[l.anchor] == nil {
			c.errf(l.line, "link to #%s: no heading has that anchor", l.anchor)
		}
	}
}

func (c *checker) checkFieldTable(t *mdTable) {
	var sec *section
	if t.under != nil {
		sec = c.sections[t.under]
	}
	if sec == nil || sec.f == nil {
		switch {
		case t.under == nil:
			c.errf(t.line, "a field table before any heading")
		case c.unresolved[t.under] != "":
			c.errf(t.line, "the heading %q (line %d) names no field: %s", t.under.text, t.under.line, c.unresolved[t.under])
		default:
			c.errf(t.line, "the field table under %q (line %d) is not under a kind's spec or status heading", t.under.text, t.under.line)
		}
		return
	}
	if !slices.Contains(t.header, "type") {
		c.errf(t.line, "the field table of %s %s has no type column", sec.kind.kind, sec.f.display)
	}
	for _, r := range t.rows {
		raws, err := parseFieldCell(r.cells[0])
		if err != nil {
			c.errf(r.line, "%s %s: %v", sec.kind.kind, sec.f.display, err)
			continue
		}
		typ, hasType := t.cell(r, "type")
		def, hasDefault := t.cell(r, "default")
		rules, hasRules := t.cell(r, "rules")
		defParts := strings.Split(def, " / ")
		if len(defParts) != len(raws) {
			defParts = make([]string, len(raws))
			for i := range defParts {
				defParts[i] = def
			}
		}
		for i, raw := range raws {
			f, item, err := resolveRowPath(sec.kind, sec.f, raw)
			if err != nil {
				c.errf(r.line, "%s %s: %v", sec.kind.kind, sec.f.display, err)
				continue
			}
			c.document(sec.kind, f, r.line)
			if hasType {
				if strings.TrimSpace(typ) == "" {
					c.errf(r.line, "%s %s: the type is empty", sec.kind.kind, f.display)
				} else {
					c.checkType(sec.kind, f, item, typ, r.line)
				}
			}
			if hasDefault {
				c.checkRequired(sec.kind, f, raw, defParts[i], r.line)
				c.stated[sec.kind.kind][f.path] = statedDefault{text: defParts[i], line: r.line}
			}
			if hasRules {
				c.checkBounds(sec.kind, f, rules, r.line)
			}
		}
	}
}

func (c *checker) document(k *kindSchema, f *field, line int) {
	if prev, ok := c.documented[k.kind][f.path]; ok && prev != line {
		c.errf(line, "%s %s is documented twice (also on line %d)", k.kind, f.display, prev)
	}
	c.documented[k.kind][f.path] = line
}

var codeSpanRe = regexp.MustCompile("`([^`]*)`")

// parseFieldCell returns the backticked paths of a field cell, later ones
// without a dot made siblings of the first.
func parseFieldCell(cell string) ([]string, error) {
	spans := codeSpanRe.FindAllStringSubmatch(cell, -1)
	if len(spans) == 0 || strings.Trim(codeSpanRe.ReplaceAllString(cell, ""), " /,") != "" {
		return nil, fmt.Errorf("the field cell %q must be backticked paths separated by / or ,", cell)
	}
	var out []string
	prefix := ""
	for i, m := range spans {
		p := strings.TrimSpace(m[1])
		if i == 0 {
			if j := strings.LastIndex(p, "."); j >= 0 {
				prefix = p[:j+1]
			}
		} else if !strings.Contains(p, ".") {
			p = prefix + p
		}
		out = append(out, p)
	}
	return out, nil
}

// resolveRowPath finds the field a row's path names under the section, and
// whether the path ends in [] (the row describes the list's items).
func resolveRowPath(k *kindSchema, base *field, raw string) (*field, bool, error) {
	segs := strings.Split(raw, ".")
	cur := base
	item := false
	for i, seg := range segs {
		name, brackets := strings.CutSuffix(seg, "[]")
		if name == "" || strings.ContainsAny(name, "[] ") {
			return nil, false, fmt.Errorf("`%s` is not a field path", raw)
		}
		next := cur.child(k, name)
		if next == nil {
			return nil, false, fmt.Errorf("`%s` is documented, but the CRD has no %s.%s", raw, displayOf(cur), name)
		}
		last := i == len(segs)-1
		switch {
		case brackets && !next.isList():
			return nil, false, fmt.Errorf("`%s`: %s is not a list in the CRD", raw, next.display)
		case !brackets && next.isList() && !last:
			return nil, false, fmt.Errorf("`%s`: %s is a list, write %s[]", raw, next.display, name)
		}
		item = brackets && last
		cur = next
	}
	return cur, item, nil
}

func displayOf(f *field) string {
	if f.isList() {
		return f.display + "[]"
	}
	return f.display
}

// typeExpr is a parsed type cell.
type typeExpr struct {
	list    bool
	keyedBy string
	kind    string // string int32 int64 bool map intOrString object enum link braces k8s
	enum    []string
	anchor  string
	braces  []*braceField
	k8s     string
}

type braceField struct {
	name string
	sub  []*braceField // nil: no fields given
}

var (
	keyedRe    = regexp.MustCompile("^(.*?),?\\s*keyed by\\s+`([^`]+)`\\s*$")
	linkTypeRe = regexp.MustCompile(`^\[[^\]]+\]\(#([^)\s]+)\)$`)
	enumTypeRe = regexp.MustCompile("^`[^`]+`(\\s*\\|\\s*`[^`]+`)+$")
)

// k8sTypes are Kubernetes types the reference names without listing their
// fields, with fields that identify them in a schema.
var k8sTypes = map[string][]string{
	"labelselector":        {"matchExpressions", "matchLabels"},
	"toleration":           {"effect", "key", "operator", "tolerationSeconds", "value"},
	"resourcerequirements": {"limits", "requests"},
	"condition":            {"lastTransitionTime", "message", "observedGeneration", "reason", "status", "type"},
}

var scalarTypes = map[string]string{
	"string": "string", "strings": "string",
	"ip address": "string", "ip addresses": "string",
	"cidr": "string", "cidrs": "string",
	"int32": "int32", "int64": "int64",
	"bool": "bool", "boolean": "bool",
	"map":           "map",
	"int or string": "intOrString",
	"object":        "object", "objects": "object",
}

func parseType(cell string) (*typeExpr, error) {
	te := &typeExpr{}
	t := strings.TrimSpace(cell)
	if m := keyedRe.FindStringSubmatch(t); m != nil {
		t, te.keyedBy = strings.TrimSpace(m[1]), m[2]
	}
	if rest, ok := strings.CutPrefix(t, "list of "); ok {
		te.list, t = true, strings.TrimSpace(rest)
	}
	lower := strings.ToLower(t)
	switch {
	case linkTypeRe.MatchString(t):
		te.kind, te.anchor = "link", linkTypeRe.FindStringSubmatch(t)[1]
	case strings.HasPrefix(t, "{") || strings.HasPrefix(t, "`{"):
		inner := t
		if strings.HasPrefix(t, "`") {
			if !strings.HasSuffix(t, "}`") {
				return nil, fmt.Errorf("unbalanced backticks")
			}
			inner = t[1 : len(t)-1]
		}
		fields, err := parseBraces(inner)
		if err != nil {
			return nil, err
		}
		te.kind, te.braces = "braces", fields
	case enumTypeRe.MatchString(t):
		te.kind = "enum"
		for _, m := range codeSpanRe.FindAllStringSubmatch(t, -1) {
			te.enum = append(te.enum, m[1])
		}
	case scalarTypes[lower] != "":
		te.kind = scalarTypes[lower]
	case k8sTypes[lower] != nil:
		te.kind, te.k8s = "k8s", lower
	case k8sTypes[strings.TrimSuffix(lower, "s")] != nil:
		te.kind, te.k8s = "k8s", strings.TrimSuffix(lower, "s")
	default:
		return nil, fmt.Errorf("unknown type %q", t)
	}
	return te, nil
}

type braceParser struct {
	s   string
	pos int
}

func parseBraces(s string) ([]*braceField, error) {
	p := &braceParser{s: s}
	fields, err := p.object()
	if err != nil {
		return nil, fmt.Errorf("%q: %v", s, err)
	}
	p.space()
	if p.pos != len(s) {
		return nil, fmt.Errorf("%q: text after the closing brace", s)
	}
	return fields, nil
}

func (p *braceParser) space() {
	for p.pos < len(p.s) && p.s[p.pos] == ' ' {
		p.pos++
	}
}

func (p *braceParser) object() ([]*braceField, error) {
	p.space()
	if p.pos >= len(p.s) || p.s[p.pos] != '{' {
		return nil, fmt.Errorf("expected { at %d", p.pos)
	}
	p.pos++
	fields := []*braceField{}
	for {
		p.space()
		start := p.pos
		for p.pos < len(p.s) && (isIdent(p.s[p.pos])) {
			p.pos++
		}
		if start == p.pos {
			return nil, fmt.Errorf("expected a field name at %d", p.pos)
		}
		bf := &braceField{name: p.s[start:p.pos]}
		p.space()
		if p.pos < len(p.s) && p.s[p.pos] == ':' {
			p.pos++
			sub, err := p.object()
			if err != nil {
				return nil, err
			}
			bf.sub = sub
			p.space()
		}
		fields = append(fields, bf)
		if p.pos >= len(p.s) {
			return nil, fmt.Errorf("missing }")
		}
		switch p.s[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return fields, nil
		default:
			return nil, fmt.Errorf("unexpected %q at %d", p.s[p.pos], p.pos)
		}
	}
}

func isIdent(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func describe(s *schema) string {
	switch {
	case s.IntOrString:
		return "int or string"
	case len(s.Enum) > 0:
		return quoteAll(enumStrings(s.Enum))
	case s.Type == "array":
		if s.Items != nil {
			return "list of " + describe(s.Items)
		}
		return "list"
	case s.Type == "integer" && s.Format != "":
		return s.Format
	case s.Type == "object" && len(s.Properties) > 0:
		return "object {" + strings.Join(sortedKeys(s.Properties), ", ") + "}"
	case s.Type == "object" && s.AdditionalProperties != nil:
		return "map"
	case s.Type == "boolean":
		return "bool"
	}
	return s.Type
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (c *checker) checkType(k *kindSchema, f *field, item bool, cell string, line int) {
	te, err := parseType(cell)
	if err != nil {
		c.errf(line, "%s %s: cannot read the type %q: %v", k.kind, f.display, cell, err)
		return
	}
	if te.list && item {
		c.errf(line, "%s %s: `%s[]` describes the items, so its type should not say \"list of\"", k.kind, f.display, f.name)
		return
	}
	s := f.s
	e := s
	if te.list || item {
		if !f.isList() {
			c.errf(line, "%s %s: the doc says a list, the CRD has %s", k.kind, f.display, describe(s))
			return
		}
		want := strings.Join(s.ListMapKeys, ", ")
		switch {
		case s.ListType == "map" && te.keyedBy != want:
			c.errf(line, "%s %s: the CRD keys the list by `%s`; the doc says keyed by %q", k.kind, f.display, want, te.keyedBy)
		case s.ListType != "map" && te.keyedBy != "":
			c.errf(line, "%s %s: the doc says keyed by `%s`, but the CRD's list is not a map list", k.kind, f.display, te.keyedBy)
		}
		e = s.Items
	} else if f.isList() {
		c.errf(line, "%s %s: the CRD has a %s; the doc says %q", k.kind, f.display, describe(s), cell)
		return
	} else if te.keyedBy != "" {
		c.errf(line, "%s %s: keyed by `%s`, but it is not a list", k.kind, f.display, te.keyedBy)
	}
	if e == nil {
		return
	}
	if len(e.Enum) > 0 && te.kind != "enum" {
		c.errf(line, "%s %s: the CRD allows only %s; the type should list them", k.kind, f.display, quoteAll(enumStrings(e.Enum)))
		return
	}
	ok := true
	switch te.kind {
	case "string":
		ok = e.Type == "string" && !e.IntOrString
	case "int32", "int64":
		ok = e.Type == "integer" && e.Format == te.kind
	case "bool":
		ok = e.Type == "boolean"
	case "intOrString":
		ok = e.IntOrString
	case "map":
		ok = e.Type == "object" && e.AdditionalProperties != nil && len(e.Properties) == 0
	case "object":
		ok = e.Type == "object" && len(e.Properties) > 0
	case "enum":
		got, want := slices.Clone(te.enum), enumStrings(e.Enum)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			c.errf(line, "%s %s: the doc gives %s, the CRD allows %s", k.kind, f.display, quoteAll(te.enum), quoteAll(enumStrings(e.Enum)))
		}
	case "link":
		ok = e.Type == "object" && len(e.Properties) > 0
		c.checkLink(k, f, te.anchor, line)
	case "braces":
		if e.Type != "object" || len(e.Properties) == 0 {
			ok = false
			break
		}
		c.checkBraces(k, f, e, te.braces, line)
	case "k8s":
		ok = e.Type == "object"
		for _, p := range k8sTypes[te.k8s] {
			if e.Properties[p] == nil {
				ok = false
			}
		}
		c.opaque[k.kind][f.path] = true
	}
	if !ok {
		c.errf(line, "%s %s: the doc says %q, the CRD has %s", k.kind, f.display, cell, describe(s))
	}
}

func (c *checker) checkLink(k *kindSchema, f *field, anchor string, line int) {
	h := c.doc.anchors[anchor]
	if h == nil {
		return // reported with the other links
	}
	s := c.sections[h]
	if s == nil || s.f == nil || s.kind != k || s.f.path != f.path {
		what := "no field"
		if s != nil && s.f != nil {
			what = s.kind.kind + " " + s.f.display
		}
		c.errf(line, "%s %s: links to #%s (line %d), which documents %s", k.kind, f.display, anchor, h.line, what)
	}
}

func (c *checker) checkBraces(k *kindSchema, f *field, e *schema, fields []*braceField, line int) {
	var names []string
	for _, bf := range fields {
		names = append(names, bf.name)
		child := f.child(k, bf.name)
		if child == nil {
			c.errf(line, "%s %s: documents `%s`, but the CRD has no %s.%s", k.kind, f.display, bf.name, displayOf(f), bf.name)
			continue
		}
		c.document(k, child, line)
		if bf.sub != nil {
			ce := elem(child.s)
			if ce.Type != "object" || len(ce.Properties) == 0 {
				c.errf(line, "%s %s: the doc gives it fields, the CRD has %s", k.kind, child.display, describe(child.s))
				continue
			}
			c.checkBraces(k, child, ce, bf.sub, line)
		}
	}
	for _, p := range sortedKeys(e.Properties) {
		if !slices.Contains(names, p) {
			c.errf(line, "%s %s.%s is in the CRD but not in the doc's {…}", k.kind, displayOf(f), p)
		}
	}
}

func (c *checker) checkRequired(k *kindSchema, f *field, raw, def string, line int) {
	if f.parent == nil {
		return
	}
	says := strings.HasPrefix(strings.ToLower(strings.TrimSpace(def)), "required")
	is := slices.Contains(elem(f.parent.s).Required, f.name)
	switch {
	case says && !is:
		c.errf(line, "%s %s: the doc says required, the CRD does not require it", k.kind, f.display)
	case !says && is && !strings.Contains(raw, "."):
		c.errf(line, "%s %s: the CRD requires it; the default column should say required", k.kind, f.display)
	}
}

var (
	identRe    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*$`)
	rangeRe    = regexp.MustCompile(`(?:\b([A-Za-z][A-Za-z0-9]*)\s+)?\b(\d+)\s*[–-]\s*(\d+)\b`)
	atMostRe   = regexp.MustCompile(`(?:\b([A-Za-z][A-Za-z0-9]*)\s+)?≤\s*(\d+)\b`)
	multipleRe = regexp.MustCompile(`(?:\b([A-Za-z][A-Za-z0-9]*)\s+)?multiple of (\d+)\b`)
)

// proseOnly keeps backticked identifiers (field names) and blanks out other
// code spans (CEL, literals), so that only the prose states bounds.
func proseOnly(s string) string {
	return codeSpanRe.ReplaceAllStringFunc(s, func(m string) string {
		if inner := m[1 : len(m)-1]; identRe.MatchString(inner) {
			return inner
		}
		return " § "
	})
}

func (c *checker) checkBounds(k *kindSchema, f *field, rules string, line int) {
	text := proseOnly(rules)
	targetOf := func(word string) *field {
		if word != "" {
			if sub := f.child(k, word); sub != nil {
				return sub
			}
		}
		return f
	}
	for _, m := range rangeRe.FindAllStringSubmatch(text, -1) {
		c.checkBound(k, targetOf(m[1]), m[2], m[3], line)
	}
	for _, m := range atMostRe.FindAllStringSubmatch(text, -1) {
		c.checkBound(k, targetOf(m[1]), "", m[2], line)
	}
	for _, m := range multipleRe.FindAllStringSubmatch(text, -1) {
		t := targetOf(m[1])
		if fmtFloat(t.s.MultipleOf) != m[2] {
			c.errf(line, "%s %s: the doc says multiple of %s, the CRD has multipleOf %s", k.kind, t.display, m[2], fmtFloat(t.s.MultipleOf))
		}
	}
}

// checkBound compares a stated bound (lo empty: only an upper one).
func (c *checker) checkBound(k *kindSchema, f *field, lo, hi string, line int) {
	s := f.s
	var what string
	var min, max string
	switch {
	case s.Type == "array":
		what, min, max = "items", fmtIntOr(s.MinItems, "0"), fmtIntOr(s.MaxItems, "none")
	case s.Type == "integer":
		what, min, max = "value", fmtFloat(s.Minimum), fmtFloat(s.Maximum)
	case s.Type == "string":
		what, min, max = "length", fmtIntOr(s.MinLength, "0"), fmtIntOr(s.MaxLength, "none")
	case s.Type == "object" && s.AdditionalProperties != nil:
		what, min, max = "entries", fmtIntOr(s.MinProperties, "0"), fmtIntOr(s.MaxProperties, "none")
	default:
		c.errf(line, "%s %s: the doc states a bound, but the CRD's %s has none to compare", k.kind, f.display, describe(s))
		return
	}
	stated := "≤" + hi
	if lo != "" {
		stated = lo + "–" + hi
	}
	if (lo != "" && lo != min) || hi != max {
		c.errf(line, "%s %s: the doc says %s, the CRD bounds its %s to %s–%s", k.kind, f.display, stated, what, min, max)
	}
}

func fmtIntOr(p *int64, none string) string {
	if p == nil {
		return none
	}
	return fmt.Sprint(*p)
}

func fmtFloat(p *float64) string {
	if p == nil {
		return "none"
	}
	return strconv.FormatFloat(*p, 'f', -1, 64)
}

func (c *checker) checkCoverage() {
	for _, kind := range c.kindNames {
		k := c.kinds[kind]
		implied := map[string]bool{}
		for p := range c.documented[kind] {
			for i := strings.LastIndex(p, "."); i > 0; i = strings.LastIndex(p[:i], ".") {
				implied[p[:i]] = true
			}
		}
		var missing []string
		for _, p := range k.sortedPaths() {
			if _, ok := c.documented[kind][p]; ok || implied[p] {
				continue
			}
			skip := false
			for a := k.fields[p].parent; a != nil; a = a.parent {
				if c.opaque[kind][a.path] || slices.Contains(missing, a.path) {
					skip = true
				}
			}
			if skip {
				continue
			}
			missing = append(missing, p)
			c.errf(0, "%s %s is in the CRD but not in the reference", kind, k.fields[p].display)
		}
	}
}

var wordRe = regexp.MustCompile(`[A-Za-z0-9_.]+`)

// integers are the whole numbers a default states, outside code spans.
func integers(s string) []string {
	var out []string
	for _, tok := range wordRe.FindAllString(codeSpanRe.ReplaceAllString(s, " "), -1) {
		tok = strings.TrimRight(tok, ".")
		if tok != "" && strings.Trim(tok, "0123456789") == "" {
			out = append(out, tok)
		}
	}
	return out
}

func (c *checker) checkDefaults() {
	for _, d := range c.in.defaults {
		for _, t := range d.targets {
			k := c.kinds[t.kind]
			if k == nil || k.fields[t.path] == nil {
				c.errf(0, "the defaults table maps %s to %s %s, which the CRD does not have", d.name, t.kind, t.path)
				continue
			}
			st, ok := c.stated[t.kind][t.path]
			if !ok {
				continue
			}
			f := k.fields[t.path]
			if v, isString := d.value.(string); isString {
				var spans []string
				for _, m := range codeSpanRe.FindAllStringSubmatch(st.text, -1) {
					spans = append(spans, m[1])
				}
				if len(spans) > 0 && !slices.Contains(spans, v) {
					c.errf(st.line, "%s %s: the doc's default %q is not api/v1alpha1.%s, %q", t.kind, f.display, st.text, d.name, v)
				}
				continue
			}
			want := fmt.Sprint(d.value)
			for _, n := range integers(st.text) {
				if n != want {
					c.errf(st.line, "%s %s: the doc's default says %s, api/v1alpha1.%s is %s", t.kind, f.display, n, d.name, want)
				}
			}
		}
	}
}

// checkConstantTable checks that the tables whose first column is col list
// exactly the values of consts, each once.
func (c *checker) checkConstantTable(col, what string, consts map[string]string) {
	names := map[string]string{}
	for n, v := range consts {
		names[v] = n
	}
	listed := map[string]int{}
	found := false
	for _, t := range c.doc.tables {
		if len(t.header) == 0 || t.header[0] != col {
			continue
		}
		found = true
		for _, r := range t.rows {
			spans := codeSpanRe.FindAllStringSubmatch(r.cells[0], -1)
			if len(spans) != 1 || strings.TrimSpace(codeSpanRe.ReplaceAllString(r.cells[0], "")) != "" {
				c.errf(r.line, "the %s cell %q must be one backticked %s", col, r.cells[0], what)
				continue
			}
			v := spans[0][1]
			if prev, ok := listed[v]; ok {
				c.errf(r.line, "%s `%s` is listed twice (also on line %d)", what, v, prev)
			}
			listed[v] = r.line
			if _, ok := names[v]; !ok {
				c.errf(r.line, "%s `%s` is listed, but api/v1alpha1 declares no such %s", what, v, what)
			}
		}
	}
	if !found {
		c.errf(0, "no table with a %q first column lists the API's %ss", col, what)
		return
	}
	for _, n := range sortedKeys(consts) {
		if _, ok := listed[consts[n]]; !ok {
			c.errf(0, "api/v1alpha1.%s (%q) is not in the %s table", n, consts[n], col)
		}
	}
}
