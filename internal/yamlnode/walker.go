package yamlnode

import (
	"strconv"

	"gopkg.in/yaml.v3"
)

// A Walker decodes values out of node trees. It does not stop at the first
// problem: it reports each through Error and goes on, so that one run
// finds every mistake in a file. A null value counts as absent and leaves
// its destination alone.
type Walker struct {
	// Error reports msg about node n (whose line is where the problem is)
	// at field path.
	Error func(n *yaml.Node, path, msg string)
	// Unknown reports a field name that the caller did not accept; name is
	// the key node. It may be nil.
	Unknown func(name *yaml.Node, path string)
	// Seen records the line each field and list item was read from, for
	// later messages about its value. It may be nil.
	Seen func(path string, line int)
	// NameAtMapping reports a field name that is not a string at the
	// line of its mapping instead of the line of the name.
	NameAtMapping bool
}

// A Value decodes the value node v of the field at path.
type Value func(v *yaml.Node, path string)

// Fields maps the field names of a mapping to the decoders of their
// values.
type Fields map[string]Value

// Field decodes field key with its Value; it reports false for a key
// fields does not have. It fits [Walker.Object].
func (fs Fields) Field(key string, v *yaml.Node, path string) bool {
	value, ok := fs[key]
	if ok {
		value(v, path)
	}
	return ok
}

// Mapping returns n, aliases followed, when it is a mapping. It returns
// nil for a null n, and reports and returns nil for anything else.
func (w *Walker) Mapping(n *yaml.Node, path string) *yaml.Node {
	return w.node(n, path, yaml.MappingNode, "a mapping")
}

// node returns n, aliases followed, when it is of kind. It returns nil for
// a null n, and reports and returns nil for anything else; what names
// kind in the report.
func (w *Walker) node(n *yaml.Node, path string, kind yaml.Kind, what string) *yaml.Node {
	n = Deref(n)
	if IsNull(n) {
		return nil
	}
	if n.Kind != kind {
		w.Error(n, path, "expected "+what+", got "+Describe(n))
		return nil
	}
	return n
}

// Object walks the mapping n, calling field for each key with the value
// and the field's path. field returns false for keys it does not know;
// those go to Unknown and are otherwise ignored. Names that are not
// strings and names given twice are errors.
func (w *Walker) Object(n *yaml.Node, path string, field func(key string, v *yaml.Node, path string) bool) {
	n = w.Mapping(n, path)
	if n == nil {
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := Deref(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			at := k
			if w.NameAtMapping {
				at = n
			}
			w.Error(at, path, "field names must be strings")
			continue
		}
		fp := Join(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			w.Error(k, fp, "duplicate field (first at line "+strconv.Itoa(first)+")")
			continue
		}
		seen[k.Value] = k.Line
		if w.Seen != nil {
			w.Seen(fp, k.Line)
		}
		if !field(k.Value, v, fp) && w.Unknown != nil {
			w.Unknown(k, fp)
		}
	}
}

// Fields walks the mapping n, decoding each field with its Value in
// fields.
func (w *Walker) Fields(n *yaml.Node, path string, fields Fields) {
	w.Object(n, path, fields.Field)
}

// List walks the sequence n, calling item for each element with its path.
func (w *Walker) List(n *yaml.Node, path string, item func(i int, v *yaml.Node, path string)) {
	n = w.node(n, path, yaml.SequenceNode, "a list")
	if n == nil {
		return
	}
	for i, v := range n.Content {
		ip := Index(path, i)
		if w.Seen != nil {
			w.Seen(ip, v.Line)
		}
		item(i, v, ip)
	}
}

// Str decodes a scalar into dst as written: unquoted numbers and booleans
// are strings too (password: 1234 is "1234"). It reports whether dst was
// set.
func (w *Walker) Str(n *yaml.Node, path string, dst *string) bool {
	n = w.node(n, path, yaml.ScalarNode, "a string")
	if n == nil {
		return false
	}
	*dst = n.Value
	return true
}

// Int decodes an integer scalar into dst.
func (w *Walker) Int(n *yaml.Node, path string, dst *int) {
	typed(w, n, path, "!!int", "an integer", dst)
}

// Bool decodes a boolean scalar (true or false) into dst.
func (w *Walker) Bool(n *yaml.Node, path string, dst *bool) {
	typed(w, n, path, "!!bool", "true or false", dst)
}

// typed decodes a scalar with the given tag into dst; what names the
// values it takes in the report of anything else. dst is only set when
// decoding succeeds.
func typed[T any](w *Walker, n *yaml.Node, path, tag, what string, dst *T) {
	n = Deref(n)
	if IsNull(n) {
		return
	}
	var v T
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag || n.Decode(&v) != nil {
		w.Error(n, path, "expected "+what+", got "+Describe(n))
		return
	}
	*dst = v
}

// StrList decodes a list of scalars, appending them to dst. An item that
// is not a scalar is reported and kept as "", so that indexes in dst
// match the file.
func (w *Walker) StrList(n *yaml.Node, path string, dst *[]string) {
	w.List(n, path, func(_ int, v *yaml.Node, p string) {
		var s string
		w.Str(v, p, &s)
		*dst = append(*dst, s)
	})
}

// StrField is a Value that decodes a string into dst.
func (w *Walker) StrField(dst *string) Value {
	return func(v *yaml.Node, p string) { w.Str(v, p, dst) }
}

// IntField is a Value that decodes an integer into dst.
func (w *Walker) IntField(dst *int) Value {
	return func(v *yaml.Node, p string) { w.Int(v, p, dst) }
}

// BoolField is a Value that decodes a boolean into dst.
func (w *Walker) BoolField(dst *bool) Value {
	return func(v *yaml.Node, p string) { w.Bool(v, p, dst) }
}

// StrListField is a Value that decodes a list of strings into dst.
func (w *Walker) StrListField(dst *[]string) Value {
	return func(v *yaml.Node, p string) { w.StrList(v, p, dst) }
}

// ObjectField is a Value that decodes a mapping with fields.
func (w *Walker) ObjectField(fields Fields) Value {
	return func(v *yaml.Node, p string) { w.Fields(v, p, fields) }
}

// ListField is a Value that decodes a list of mappings, appending one T
// per item to dst. Each item starts as a copy of zero and is decoded with
// the fields that fields returns for it. An item that is not a mapping is
// reported and appended as zero, so that indexes in dst match the file.
func ListField[T any](w *Walker, dst *[]T, zero T, fields func(*T) Fields) Value {
	return func(v *yaml.Node, p string) {
		w.List(v, p, func(_ int, v *yaml.Node, p string) {
			item := zero
			w.Fields(v, p, fields(&item))
			*dst = append(*dst, item)
		})
	}
}
