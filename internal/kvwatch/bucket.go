package kvwatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// OpenBucket binds to a key-value bucket, creating it when missing with
// replicas copies, or 3 then 1 when replicas is 0.
func OpenBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	for {
		kv, err := js.KeyValue(ctx, cfg.Bucket)
		if err == nil {
			return kv, nil
		}
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("open bucket %s: %w", cfg.Bucket, err)
			}
			time.Sleep(200 * time.Millisecond) // JetStream not ready yet
			continue
		}
		replicas := []int{cfg.Replicas}
		if cfg.Replicas <= 0 {
			replicas = []int{3, 1}
		}
		for _, r := range replicas {
			c := cfg
			c.Replicas = r
			if kv, err = js.CreateKeyValue(ctx, c); err == nil {
				return kv, nil
			}
			if errors.Is(err, jetstream.ErrBucketExists) {
				break
			}
		}
		if !errors.Is(err, jetstream.ErrBucketExists) {
			return nil, fmt.Errorf("create bucket %s: %w", cfg.Bucket, err)
		}
	}
}

// IsConflict reports whether err is a compare-and-set that lost.
func IsConflict(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
