// Package configguard refuses any haproxy.cfg or keepalived.conf that says
// something hakeeper's renderer (internal/render) never says.
//
// It exists as defence in depth for the agent, which runs as root next to
// HAProxy and Keepalived and applies whatever the LoadBalancer's ConfigMaps
// hold once the daemons' own checks pass. Those checks accept plenty that
// runs commands or loads code on the node: an HAProxy `program` section,
// `lua-load`, `external-check`, a Keepalived `vrrp_script` or `notify`
// script, an `include` of some other file. HAProxy even runs a lua-load
// script's body while merely checking the config. Whoever can write the
// ConfigMaps must not get that: the agent runs these guards before it writes
// a candidate file or runs a daemon's check, and applies only configs in the
// operator's own vocabulary.
//
// The guards are allowlists: every keyword, and for a few keywords every
// option, must be one the renderer's templates can print; the paths the
// renderer prints must be the very paths it uses under the agent's run
// directory. Quotes, backslashes, '$' and comments after a directive are
// refused outright (the renderer prints none), so the guard splits a line
// into words exactly as the daemons do. TestGoldensPass and
// TestRenderedConfigsPass keep the lists in step with the renderer.
package configguard

import (
	"fmt"
	"strings"

	"github.com/hakeeper/hakeeper/internal/contract"
)

// refusal is one line the guard refuses.
type refusal struct {
	file string
	line int
	what string // the words refused, quoted in the message
	why  string // empty: "is not something hakeeper renders"
}

func (r *refusal) Error() string {
	why := r.why
	if why == "" {
		why = "is not something hakeeper renders"
	}
	return fmt.Sprintf("%s line %d: %q %s", r.file, r.line, r.what, why)
}

// line is one directive: a line that is neither blank nor a comment.
type line struct {
	n     int
	text  string
	words []string
}

// directives splits text into directive lines. Every byte, comments
// included, must be printable ASCII, a tab or a newline: the renderer
// prints nothing else, and a carriage return or a NUL could end a line for
// a daemon where it does not end one here. maxLine (0: no limit) bounds
// every line, comments included: keepalived reads a longer line as two,
// so the tail of a comment would become a directive.
func directives(file, text, commentStarts string, maxLine int) ([]line, error) {
	var out []line
	for i, s := range strings.Split(text, "\n") {
		n := i + 1
		if maxLine > 0 && len(s) > maxLine {
			return nil, &refusal{file: file, line: n, what: s[:40] + "...", why: fmt.Sprintf("is longer than %d bytes, which hakeeper never renders", maxLine)}
		}
		for j := 0; j < len(s); j++ {
			if c := s[j]; c != '\t' && (c < 0x20 || c > 0x7e) {
				return nil, &refusal{file: file, line: n, what: string([]byte{c}), why: "is a byte hakeeper never renders"}
			}
		}
		trimmed := strings.TrimLeft(s, " \t")
		if trimmed == "" || strings.ContainsRune(commentStarts, rune(trimmed[0])) {
			continue
		}
		out = append(out, line{n: n, text: s, words: strings.Fields(s)})
	}
	return out, nil
}

// checkCharacters refuses quoting, escapes, variables and trailing
// comments, which the renderer never prints and which would make the
// daemons read words other than the ones the guard reads.
func checkCharacters(file string, l line, special string) error {
	if i := strings.IndexAny(l.text, special); i >= 0 {
		return &refusal{file: file, line: l.n, what: strings.TrimSpace(l.text),
			why: fmt.Sprintf("carries %q; hakeeper renders no quotes, escapes, variables or trailing comments", l.text[i])}
	}
	return nil
}

func pathsFor(runDir string) contract.Paths {
	if runDir == "" {
		return contract.DefaultPaths()
	}
	return contract.Paths{RunDir: runDir}
}
