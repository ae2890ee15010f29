// Package yamlnode provides helpers to walk gopkg.in/yaml.v3 node trees
// with field paths and line numbers for error messages.
package yamlnode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Deref follows aliases to the node they name. It gives up after 16 hops,
// so a file that aliases itself cannot make it loop.
func Deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 16; i++ {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is absent or an explicit null ("~", "null" or
// nothing after the colon); such fields count as not set.
func IsNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Line returns the line n starts on, or 0 for a nil n.
func Line(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// Describe names what n is, for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
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

// Join returns the path of field key in the mapping at path:
// ("spec", "port") is "spec.port", ("", "spec") is "spec".
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Index returns the path of item i of the list at path: "uris[0]".
func Index(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// Decode decodes the next document of dec into n; it returns io.EOF after
// the last one. yaml.v3 is not expected to panic, but its input is a
// user's file: a panic becomes an error.
func Decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// DecodeAll decodes every document of data. It returns the documents
// decoded before an error along with the error.
func DecodeAll(data []byte) ([]*yaml.Node, error) {
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		if err := Decode(dec, &n); err != nil {
			if errors.Is(err, io.EOF) {
				return docs, nil
			}
			return docs, err
		}
		docs = append(docs, &n)
	}
}

var errorLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// SyntaxError splits a yaml.v3 error ("yaml: line 3: did not find
// expected key") into its line, 0 when it names none, and the message
// without the "yaml: " prefix.
func SyntaxError(err error) (line int, msg string) {
	msg = err.Error()
	if m := errorLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}
