package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

const ctlUsage = `usage: routr ctl <command> [flags] [args]

Resources (through the management API; kinds: acl, agent, credentials,
domain, number, peer, trunk):
  get <kind> [ref...]              list every resource of kind, or the given ones
  describe <kind> <ref>            one resource with everything it links to
  create <kind> [field=value...]   create; fields are the API's (camelCase)
  update <kind> <ref> [field=value...]
  delete <kind> <ref...>
  apply -f <file|dir>              create or update the resources in Routr
                                   resource files (writes the database named
                                   by DATABASE_URL directly)
  apply -api -f <file|dir>         the same through the API (a remote edge);
                                   enabled: false and privacy: Private are
                                   reported and not stored (Routr's API
                                   cannot carry them)
  apikey create <name> | revoke <id> | list
                                   manage API keys (database directly)

Flags (any position):
  -endpoint URL    API address (ROUTR_API_ENDPOINT; default http://127.0.0.1:51908;
                   host:port means http, https://host:port for TLS)
  -api-key KEY     API key (ROUTR_API_KEY), sent as x-api-key
  -o table|json    output format (default table; describe prints JSON)
  -d JSON          request body as JSON, before field=value pairs
  -f PATH          resource file or directory for apply
  -cacert FILE     CA to verify the API's certificate
  -cert FILE -key FILE   client certificate for the API
  -timeout D       per-request timeout (default 30s)`

// ctlFlags are ctl's options; they may appear before, between or after
// the positional arguments.
type ctlFlags struct {
	endpoint, apiKey, output, data, file string
	viaAPI                               bool
	cacert, cert, key                    string
	timeout                              time.Duration
}

func parseCtlArgs(args []string, env func(string) string, stderr io.Writer) (ctlFlags, []string, error) {
	var f ctlFlags
	fs := flag.NewFlagSet("ctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.endpoint, "endpoint", orDefault(env("ROUTR_API_ENDPOINT"), "http://127.0.0.1:51908"), "")
	fs.StringVar(&f.apiKey, "api-key", env("ROUTR_API_KEY"), "")
	fs.StringVar(&f.output, "o", "table", "")
	fs.StringVar(&f.data, "d", "", "")
	fs.StringVar(&f.file, "f", "", "")
	fs.BoolVar(&f.viaAPI, "api", false, "")
	fs.StringVar(&f.cacert, "cacert", "", "")
	fs.StringVar(&f.cert, "cert", "", "")
	fs.StringVar(&f.key, "key", "", "")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return f, nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if f.output != "table" && f.output != "json" {
		return f, nil, fmt.Errorf("-o %q: want table or json", f.output)
	}
	return f, pos, nil
}

// ctl runs `routr ctl`.
func ctl(ctx context.Context, args []string, env func(string) string, stdout, stderr io.Writer) int {
	f, pos, err := parseCtlArgs(args, env, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "routr ctl: %v\n%s\n", err, ctlUsage)
		return 2
	}
	if len(pos) == 0 || pos[0] == "help" {
		fmt.Fprintln(stdout, ctlUsage)
		return 0
	}
	cmd, pos := pos[0], pos[1:]
	switch cmd {
	case "apply":
		if f.viaAPI {
			err = ctlApplyAPI(ctx, f, stdout, stderr)
		} else {
			err = ctlApply(ctx, env, f, stdout, stderr)
		}
	case "apikey":
		err = ctlAPIKey(ctx, env, pos, f, stdout, stderr)
	case "get", "describe", "create", "update", "delete":
		err = ctlResource(ctx, cmd, pos, f, stdout)
	default:
		fmt.Fprintf(stderr, "routr ctl: unknown command %q\n%s\n", cmd, ctlUsage)
		return 2
	}
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "routr ctl %s: %v\n", cmd, err)
			return 2
		}
		fmt.Fprintf(stderr, "routr ctl %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// apiClient returns the HTTP client and base URL for f.endpoint, sending
// the API key on every request.
func apiClient(f ctlFlags) (*http.Client, string, error) {
	base := f.endpoint
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if strings.HasPrefix(base, "https://") {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if f.cacert != "" {
			pem, err := os.ReadFile(f.cacert)
			if err != nil {
				return nil, "", fmt.Errorf("-cacert: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, "", fmt.Errorf("-cacert %s: no PEM certificate", f.cacert)
			}
		}
		if f.cert != "" || f.key != "" {
			c, err := tls.LoadX509KeyPair(f.cert, f.key)
			if err != nil {
				return nil, "", fmt.Errorf("-cert/-key: %w", err)
			}
			tc.Certificates = []tls.Certificate{c}
		}
		tr.TLSClientConfig = tc
	}
	return &http.Client{Transport: keyTransport{key: f.apiKey, next: tr}, Timeout: f.timeout}, strings.TrimRight(base, "/"), nil
}

// keyTransport adds the API key header.
type keyTransport struct {
	key  string
	next http.RoundTripper
}

func (t keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.key != "" {
		r = r.Clone(r.Context())
		r.Header.Set("X-Api-Key", t.key)
	}
	return t.next.RoundTrip(r)
}

func ctlResource(ctx context.Context, cmd string, pos []string, f ctlFlags, stdout io.Writer) error {
	if len(pos) == 0 {
		return usagef("missing kind")
	}
	hc, base, err := apiClient(f)
	if err != nil {
		return err
	}
	k, err := findKind(ctlKinds(hc, base), pos[0])
	if err != nil {
		return usageError{err.Error()}
	}
	refs := pos[1:]
	switch cmd {
	case "get":
		var items []proto.Message
		if len(refs) == 0 {
			items, err = listAll(ctx, k)
		} else {
			for _, ref := range refs {
				m, err := k.get(ctx, nil, []string{"ref=" + ref})
				if err != nil {
					return apiError(err)
				}
				items = append(items, m)
			}
		}
		if err != nil {
			return apiError(err)
		}
		return printItems(stdout, f.output, k, items)
	case "describe":
		if len(refs) != 1 {
			return usagef("describe %s: want one ref", k.names[0])
		}
		m, err := k.get(ctx, nil, []string{"ref=" + refs[0]})
		if err != nil {
			return apiError(err)
		}
		return printJSON(stdout, m)
	case "create":
		m, err := k.create(ctx, []byte(f.data), refs)
		if err != nil {
			return apiError(err)
		}
		return printItems(stdout, f.output, k, []proto.Message{m})
	case "update":
		if len(refs) == 0 {
			return usagef("update %s: missing ref", k.names[0])
		}
		m, err := k.update(ctx, []byte(f.data), append([]string{"ref=" + refs[0]}, refs[1:]...))
		if err != nil {
			return apiError(err)
		}
		return printItems(stdout, f.output, k, []proto.Message{m})
	case "delete":
		if len(refs) == 0 {
			return usagef("delete %s: missing ref", k.names[0])
		}
		for _, ref := range refs {
			if _, err := k.del(ctx, nil, []string{"ref=" + ref}); err != nil {
				return apiError(err)
			}
			fmt.Fprintf(stdout, "deleted %s %s\n", k.kind, ref)
		}
	}
	return nil
}

// apiError shortens a Connect error to "code: message".
func apiError(err error) error {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return fmt.Errorf("%s: %s", ce.Code(), ce.Message())
	}
	return err
}

// listAll follows nextPageToken to the end, at most 100,000 items.
func listAll(ctx context.Context, k ctlKind) ([]proto.Message, error) {
	var out []proto.Message
	token := ""
	for len(out) < 100000 {
		resp, err := k.list(ctx, nil, []string{"pageSize=500", "pageToken=" + token})
		if err != nil {
			return nil, err
		}
		r := resp.ProtoReflect()
		items := r.Get(r.Descriptor().Fields().ByName("items")).List()
		for i := range items.Len() {
			out = append(out, items.Get(i).Message().Interface())
		}
		next := r.Get(r.Descriptor().Fields().ByName("next_page_token")).String()
		if next == "" || next == token || items.Len() == 0 {
			break
		}
		token = next
	}
	return out, nil
}

// printJSON prints m indented. protojson's own multiline output varies
// its spacing on purpose, so it is re-indented for stable output.
func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.Marshal(m)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, out.String())
	return err
}

func printItems(w io.Writer, format string, k ctlKind, items []proto.Message) error {
	if format == "json" {
		raw := make([]json.RawMessage, 0, len(items))
		for _, m := range items {
			b, err := protojson.Marshal(m)
			if err != nil {
				return err
			}
			raw = append(raw, b)
		}
		b, err := json.MarshalIndent(raw, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for i, c := range k.columns {
		if i > 0 {
			fmt.Fprint(tw, "\t")
		}
		fmt.Fprint(tw, c[0])
	}
	fmt.Fprintln(tw)
	for _, m := range items {
		for i, c := range k.columns {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, cell(m.ProtoReflect(), c[1]))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// cell reads the dotted JSON path p of m as text.
func cell(m protoreflect.Message, p string) string {
	name, rest, nested := strings.Cut(p, ".")
	fd := m.Descriptor().Fields().ByJSONName(name)
	if fd == nil {
		return ""
	}
	v := m.Get(fd)
	switch {
	case nested:
		if fd.Message() == nil || !m.Has(fd) {
			return ""
		}
		return cell(v.Message(), rest)
	case fd.IsList():
		l := v.List()
		parts := make([]string, l.Len())
		for i := range l.Len() {
			parts[i] = fmt.Sprint(l.Get(i).Interface())
		}
		return strings.Join(parts, ",")
	case fd.Kind() == protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			return string(ev.Name())
		}
		return fmt.Sprint(v.Enum())
	}
	return fmt.Sprint(v.Interface())
}
