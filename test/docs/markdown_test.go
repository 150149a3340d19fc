package docs

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
)

// The subset of GitHub-flavoured Markdown the reference uses: ATX headings,
// pipe tables, fenced code blocks (skipped) and links to headings.

type mdHeading struct {
	level  int
	text   string // without the #s, backticks removed
	line   int
	anchor string // GitHub's: lower case, punctuation dropped, spaces to -, -1, -2... on repeats
	parent *mdHeading
}

type mdTable struct {
	line   int
	under  *mdHeading // nil before the first heading
	header []string   // lower case
	rows   []mdRow
}

type mdRow struct {
	line  int
	cells []string // trimmed, \| unescaped
}

// cell returns the row's cell in the column named col, and whether the
// table has that column.
func (t *mdTable) cell(r mdRow, col string) (string, bool) {
	for i, h := range t.header {
		if h == col {
			return r.cells[i], true
		}
	}
	return "", false
}

type mdLink struct {
	line   int
	anchor string
}

type mdDoc struct {
	headings []*mdHeading
	tables   []*mdTable
	anchors  map[string]*mdHeading
	links    []mdLink
}

var (
	headingRe   = regexp.MustCompile(`^(#{1,6})\s+(.*?)\s*#*\s*$`)
	separatorRe = regexp.MustCompile(`^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$`)
	localLinkRe = regexp.MustCompile(`\]\(#([^)\s]+)\)`)
)

// parseMarkdown reads headings, tables and in-document links. Problems are
// malformed tables (a row with the wrong number of cells).
func parseMarkdown(src string) (*mdDoc, []string) {
	doc := &mdDoc{anchors: map[string]*mdHeading{}}
	var problems []string
	seen := map[string]int{}
	var current *mdHeading
	lines := strings.Split(src, "\n")
	fence := ""
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		doc.addLinks(i+1, line)
		if m := headingRe.FindStringSubmatch(line); m != nil {
			h := &mdHeading{level: len(m[1]), text: strings.TrimSpace(strings.ReplaceAll(m[2], "`", "")), line: i + 1}
			for p := current; p != nil; p = p.parent {
				if p.level < h.level {
					h.parent = p
					break
				}
			}
			a := slug(h.text)
			if n := seen[a]; n > 0 {
				seen[a] = n + 1
				a = fmt.Sprintf("%s-%d", a, n)
			} else {
				seen[a] = 1
			}
			h.anchor = a
			doc.anchors[a] = h
			doc.headings = append(doc.headings, h)
			current = h
			continue
		}
		if strings.HasPrefix(trimmed, "|") && i+1 < len(lines) && separatorRe.MatchString(strings.TrimSpace(lines[i+1])) {
			t := &mdTable{line: i + 1, under: current}
			for _, h := range splitRow(trimmed) {
				t.header = append(t.header, strings.ToLower(h))
			}
			i += 2
			for ; i < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[i]), "|"); i++ {
				doc.addLinks(i+1, lines[i])
				cells := splitRow(strings.TrimSpace(lines[i]))
				if len(cells) != len(t.header) {
					problems = append(problems, fmt.Sprintf("docs/api.md:%d: the row has %d cells, its table's header %d", i+1, len(cells), len(t.header)))
					continue
				}
				t.rows = append(t.rows, mdRow{line: i + 1, cells: cells})
			}
			i-- // the line that ended the table is read again
			doc.tables = append(doc.tables, t)
		}
	}
	return doc, problems
}

func (doc *mdDoc) addLinks(line int, text string) {
	for _, m := range localLinkRe.FindAllStringSubmatch(text, -1) {
		doc.links = append(doc.links, mdLink{line: line, anchor: m[1]})
	}
}

// splitRow splits a table row on the pipes that are not escaped.
func splitRow(line string) []string {
	var cells []string
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		switch {
		case line[i] == '\\' && i+1 < len(line) && line[i+1] == '|':
			b.WriteByte('|')
			i++
		case line[i] == '|':
			cells = append(cells, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(line[i])
		}
	}
	cells = append(cells, strings.TrimSpace(b.String()))
	if strings.HasPrefix(line, "|") {
		cells = cells[1:]
	}
	if strings.HasSuffix(line, "|") && !strings.HasSuffix(line, `\|`) {
		cells = cells[:len(cells)-1]
	}
	return cells
}

// slug is GitHub's anchor for a heading.
func slug(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case unicode.IsLetter(r), unicode.IsDigit(r), r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
