// Package apipb holds the Go code generated from proto/routr/*.proto: the
// messages and Connect (gRPC, gRPC-Web, HTTP/JSON) stubs of the management
// API, wire-compatible with Routr v2's v2beta1 services. Regenerate with
// `go generate ./internal/apipb` (needs only Go and the module proxy).
package apipb

//go:generate sh -c "cd ../.. && go run github.com/bufbuild/buf/cmd/buf@v1.75.0 generate proto --template proto/buf.gen.yaml"
