package store

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/routr-go/routr/internal/resources"
)

// applyOrder ranks kinds so that a resource comes after those it may refer
// to.
var applyOrder = map[resources.Kind]int{
	resources.KindACL:         0,
	resources.KindCredentials: 1,
	resources.KindTrunk:       2,
	resources.KindNumber:      3,
	resources.KindDomain:      4,
	resources.KindAgent:       5,
	resources.KindPeer:        6,
}

func apply(ctx context.Context, s Store, rs []resources.Resource) ([]Record, error) {
	rs = slices.Clone(rs)
	slices.SortStableFunc(rs, func(a, b resources.Resource) int {
		return applyOrder[kindOf(a)] - applyOrder[kindOf(b)]
	})
	var out []Record
	for _, r := range rs {
		b, kind := r.Meta(), kindOf(r)
		var rec Record
		var err error
		if b.Ref == "" {
			rec, err = s.Create(ctx, r)
		} else {
			_, err = s.Get(ctx, kind, b.Ref)
			switch {
			case err == nil:
				rec, err = s.Update(ctx, r)
			case errors.Is(err, ErrNotFound):
				rec, err = s.Create(ctx, r)
			}
		}
		if err != nil {
			return out, fmt.Errorf("apply %s %q: %w", kind, b.Ref, err)
		}
		out = append(out, rec)
	}
	return out, nil
}
