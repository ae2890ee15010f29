package resources

import (
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/routr-go/routr/internal/yamlnode"
)

// decoder walks yaml.Node trees into resource structs, recording the line
// of every field it sees and collecting problems instead of stopping at
// the first.
type decoder struct {
	file  string
	probs []Problem
	// res is the resource being decoded; nil at file level.
	res *Base
	w   yamlnode.Walker
}

func newDecoder(file string) *decoder {
	d := &decoder{file: file}
	d.w = yamlnode.Walker{
		Error: func(n *yaml.Node, field, msg string) { d.errorf(n, field, "%s", msg) },
		Unknown: func(name *yaml.Node, field string) {
			d.warnf(name, field, "unknown field, ignored")
		},
		Seen: func(field string, line int) {
			if d.res != nil {
				d.res.notes.lines = append(d.res.notes.lines, fieldLine{field, line})
			}
		},
	}
	return d
}

// errorf records a problem with the value node n at field path.
func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	p := Problem{File: d.file, Line: yamlnode.Line(n), Field: field, Msg: fmt.Sprintf(format, args...)}
	if d.res != nil {
		p.Ref, p.Kind = d.res.Ref, string(d.res.Kind)
		n := d.res.notes
		if n.bad == nil {
			n.bad = make(map[string]bool)
		}
		n.bad[field] = true
		n.problems = append(n.problems, p)
	}
	d.probs = append(d.probs, p)
}

// warnf records a non-fatal finding on the current resource.
func (d *decoder) warnf(n *yaml.Node, field, format string, args ...any) {
	if d.res == nil {
		return
	}
	d.res.notes.warnings = append(d.res.notes.warnings, Problem{
		File: d.file, Line: yamlnode.Line(n), Ref: d.res.Ref, Kind: string(d.res.Kind),
		Field: field, Msg: fmt.Sprintf(format, args...),
	})
}

// freeform decodes a mapping of anything (the extended object) into dst,
// with nested mappings as map[string]any so that it encodes to JSON.
func (d *decoder) freeform(n *yaml.Node, path string, dst *map[string]any) {
	n = d.w.Mapping(n, path)
	if n == nil {
		return
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		d.errorf(n, path, "%v", err)
		return
	}
	*dst = jsonish(m).(map[string]any)
}

// jsonish converts what yaml.v3 decodes into values encoding/json can
// encode: maps with non-string keys get their keys formatted.
func jsonish(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonish(e)
		}
		return v
	case map[any]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[fmt.Sprint(k)] = jsonish(e)
		}
		return m
	case []any:
		for i, e := range v {
			v[i] = jsonish(e)
		}
		return v
	}
	return v
}
