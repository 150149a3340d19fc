package render

import (
	"bytes"
	"embed"
	"fmt"
	"regexp"
	"text/template"
)

//go:embed templates/*.tmpl
var templateFiles embed.FS

// safeTokenRE is the second line of defence behind validation: every string
// a template prints goes through tok, which refuses anything HAProxy or
// Keepalived could read as more than one word, a comment, a quote, an
// escape, a variable or a block.
var safeTokenRE = regexp.MustCompile(`^[A-Za-z0-9._:/@%!*+,;=~?&()\[\]-]+$`)

var templates = template.Must(template.New("").Option("missingkey=error").Funcs(template.FuncMap{
	"tok": tok,
}).ParseFS(templateFiles, "templates/*.tmpl"))

func tok(s string) (string, error) {
	if !safeTokenRE.MatchString(s) {
		return "", fmt.Errorf("refusing to print %q into a config file", s)
	}
	return s, nil
}

func execute(name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		return nil, fmt.Errorf("failed to render %s: %w", name, err)
	}
	return buf.Bytes(), nil
}
