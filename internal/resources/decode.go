package resources

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// decoder walks yaml.Node trees into resource structs, recording the line
// of every field it sees and collecting problems instead of stopping at
// the first.
type decoder struct {
	file  string
	probs []Problem
	// res is the resource being decoded; nil at file level.
	res *Base
}

// errorf records a problem with the value node n at field path.
func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	p := Problem{File: d.file, Line: nodeLine(n), Field: field, Msg: fmt.Sprintf(format, args...)}
	if d.res != nil {
		p.Ref, p.Kind = d.res.Ref, string(d.res.Kind)
		if d.res.bad == nil {
			d.res.bad = make(map[string]bool)
		}
		d.res.bad[field] = true
		d.res.problems = append(d.res.problems, p)
	}
	d.probs = append(d.probs, p)
}

// warnf records a non-fatal finding on the current resource.
func (d *decoder) warnf(n *yaml.Node, field, format string, args ...any) {
	if d.res == nil {
		return
	}
	d.res.warnings = append(d.res.warnings, Problem{
		File: d.file, Line: nodeLine(n), Ref: d.res.Ref, Kind: string(d.res.Kind),
		Field: field, Msg: fmt.Sprintf(format, args...),
	})
}

func nodeLine(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// isNull reports whether n is absent or an explicit null ("~", "null" or
// nothing after the colon); such fields count as not set.
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names what n is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return "string " + strconv.Quote(n.Value)
		case "!!int":
			return "integer " + n.Value
		case "!!float":
			return "number " + n.Value
		case "!!bool":
			return "boolean " + n.Value
		case "!!null":
			return "null"
		}
		return strconv.Quote(n.Value)
	}
	return "an unsupported node"
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// object walks the mapping n, calling field for each key with the value
// and the field's path. field returns false for keys it does not know;
// those are reported as warnings and otherwise ignored. A null n is
// treated as absent; object reports whether n was a mapping.
func (d *decoder) object(n *yaml.Node, path string, field func(key string, v *yaml.Node, path string) bool) bool {
	n = deref(n)
	if isNull(n) {
		return false
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
		return false
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			d.errorf(k, path, "field names must be strings")
			continue
		}
		fp := joinPath(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, fp, "duplicate field (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		if d.res != nil {
			d.res.lines[fp] = k.Line
		}
		if !field(k.Value, v, fp) {
			d.warnf(k, fp, "unknown field, ignored")
		}
	}
	return true
}

// list walks the sequence n, calling item for each element. A null n is
// treated as absent.
func (d *decoder) list(n *yaml.Node, path string, item func(i int, v *yaml.Node, path string)) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", describe(n))
		return
	}
	for i, v := range n.Content {
		ip := path + "[" + strconv.Itoa(i) + "]"
		if d.res != nil {
			d.res.lines[ip] = v.Line
		}
		item(i, v, ip)
	}
}

// str decodes a scalar into dst. Unquoted numbers and booleans are taken
// as written (password: 1234 is the string "1234"); null leaves dst alone.
func (d *decoder) str(n *yaml.Node, path string, dst *string) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, path, "expected a string, got %s", describe(n))
		return
	}
	*dst = n.Value
}

// integer decodes an integer scalar into dst.
func (d *decoder) integer(n *yaml.Node, path string, dst *int) {
	n = deref(n)
	if isNull(n) {
		return
	}
	var v int
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		d.errorf(n, path, "expected an integer, got %s", describe(n))
		return
	}
	*dst = v
}

// boolean decodes a boolean scalar (true or false) into dst.
func (d *decoder) boolean(n *yaml.Node, path string, dst *bool) {
	n = deref(n)
	if isNull(n) {
		return
	}
	var v bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		d.errorf(n, path, "expected true or false, got %s", describe(n))
		return
	}
	*dst = v
}

// strList decodes a list of scalars into dst.
func (d *decoder) strList(n *yaml.Node, path string, dst *[]string) {
	d.list(n, path, func(_ int, v *yaml.Node, p string) {
		var s string
		d.str(v, p, &s)
		*dst = append(*dst, s)
	})
}

// freeform decodes a mapping of anything (the extended object) into dst,
// with nested mappings as map[string]any so that it encodes to JSON.
func (d *decoder) freeform(n *yaml.Node, path string, dst *map[string]any) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping, got %s", describe(n))
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
