package resources

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with the resources, located as precisely as
// is known: File and Line are empty/zero for resources that did not come
// from a file, Ref and Kind are empty when the problem is not about one
// resource, Field is a path such as "spec.outbound.uris[0].uri.port".
type Problem struct {
	File  string
	Line  int
	Ref   string
	Kind  string
	Field string
	Msg   string
}

// String formats p as
//
//	file:line: Kind "ref": field: message
//
// leaving out the parts that are empty.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	if p.Kind != "" || p.Ref != "" {
		b.WriteString(cmp.Or(p.Kind, "resource"))
		if p.Ref != "" {
			b.WriteString(" " + strconv.Quote(p.Ref))
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// ValidationError lists every problem found in a set of resources.
type ValidationError struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// validationError returns nil for no problems, else a *ValidationError with
// the problems ordered by file and line (stable, so problems without a file
// keep the order they were found in).
func validationError(ps []Problem) error {
	if len(ps) == 0 {
		return nil
	}
	sortProblems(ps)
	return &ValidationError{Problems: ps}
}

func sortProblems(ps []Problem) {
	slices.SortStableFunc(ps, func(a, b Problem) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
}

// problemf makes a Problem about resource b's field, at the line the field
// (or its nearest recorded parent) was read from.
func (b *Base) problemf(field, format string, args ...any) Problem {
	return Problem{
		File:  b.Source.File,
		Line:  b.lineOf(field),
		Ref:   b.Ref,
		Kind:  string(b.Kind),
		Field: field,
		Msg:   fmt.Sprintf(format, args...),
	}
}

// lineOf returns the line of field, or of its closest parent that has one,
// or of the resource itself.
func (b *Base) lineOf(field string) int {
	for p := field; p != ""; p = parentPath(p) {
		if l, ok := b.line(p); ok {
			return l
		}
	}
	return b.Source.Line
}

// parentPath strips the last element of a field path:
// "a.b[2].c" -> "a.b[2]" -> "a.b" -> "a" -> "".
func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}
