package resources

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// LoadDir reads every *.yaml, *.yml and *.json file directly in dir (not
// in subdirectories; names starting with "." are skipped; extensions are
// matched case-insensitively) in name order, parses each with [Parse] and
// builds them all with [Build]. Problems name files as dir joined with the
// file name. The error is a *ValidationError listing every problem of
// every file, unless dir itself cannot be read.
func LoadDir(dir string) (*Set, error) {
	return load(os.DirFS(dir), func(name string) string { return filepath.Join(dir, name) })
}

// LoadFS is LoadDir for the root of fsys (an embed.FS, a test's
// fstest.MapFS); problems name files by their path in fsys.
func LoadFS(fsys fs.FS) (*Set, error) {
	return load(fsys, func(name string) string { return name })
}

func load(fsys fs.FS, display func(string) string) (*Set, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			// fs reports the path inside fsys ("."): name the directory.
			err = pe.Err
		}
		return nil, fmt.Errorf("load resources from %s: %w", display("."), err)
	}
	var names []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		switch strings.ToLower(path.Ext(name)) {
		case ".yaml", ".yml", ".json":
			names = append(names, name)
		}
	}
	slices.Sort(names)

	var all []Resource
	var probs []Problem
	for _, name := range names {
		file := display(name)
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			probs = append(probs, Problem{File: file, Msg: err.Error()})
			continue
		}
		rs, err := Parse(file, data)
		all = append(all, rs...)
		if ve, ok := err.(*ValidationError); ok {
			probs = append(probs, ve.Problems...)
		}
	}
	set, err := Build(all)
	if ve, ok := err.(*ValidationError); ok {
		// Build repeats the problems Parse found in the resources it
		// returned; report each once.
		seen := make(map[Problem]bool, len(probs))
		for _, p := range probs {
			seen[p] = true
		}
		for _, p := range ve.Problems {
			if !seen[p] {
				probs = append(probs, p)
			}
		}
	}
	if err := validationError(probs); err != nil {
		return nil, err
	}
	return set, nil
}
