package config

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/routr-go/routr/internal/yamlnode"
)

// fileDecoder reads an EdgePort file into a Config, collecting every
// problem as "file:line: field: message".
type fileDecoder struct {
	file     string
	probs    []lineMsg
	warnings []lineMsg
	// lines maps field paths to the line they were read from.
	lines map[string]int
	// bad holds the fields already reported, so that later checks of the
	// same field do not report them again.
	bad map[string]bool
	w   yamlnode.Walker
}

func newFileDecoder(file string) *fileDecoder {
	f := &fileDecoder{file: file, lines: make(map[string]int), bad: make(map[string]bool)}
	f.w = yamlnode.Walker{
		Error: func(n *yaml.Node, field, msg string) { f.errorf(n.Line, field, "%s", msg) },
		Unknown: func(name *yaml.Node, field string) {
			f.warnings = append(f.warnings, lineMsg{name.Line, f.format(name.Line, field, "unknown field, ignored")})
		},
		Seen:          func(field string, line int) { f.lines[field] = line },
		NameAtMapping: true,
	}
	return f
}

// lineMsg is a problem and the line it is about, for sorting.
type lineMsg struct {
	line int
	msg  string
}

func (f *fileDecoder) errorf(line int, field, format string, args ...any) {
	if field != "" {
		f.bad[field] = true
	}
	f.probs = append(f.probs, lineMsg{line, f.format(line, field, fmt.Sprintf(format, args...))})
}

// sorted returns the messages ordered by line.
func sorted(ms []lineMsg) []string {
	slices.SortStableFunc(ms, func(a, b lineMsg) int { return a.line - b.line })
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.msg
	}
	return out
}

func (f *fileDecoder) format(line int, field, msg string) string {
	var b strings.Builder
	b.WriteString(f.file)
	if line > 0 {
		b.WriteString(":" + strconv.Itoa(line))
	}
	b.WriteString(": ")
	if field != "" {
		b.WriteString(field + ": ")
	}
	b.WriteString(msg)
	return b.String()
}

// lineOf returns the line of field or of its nearest parent.
func (f *fileDecoder) lineOf(field string) int {
	for p := field; p != ""; {
		if l, ok := f.lines[p]; ok {
			return l
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0
}

// edgePort decodes data, an EdgePort resource in YAML or JSON, into cfg.
func (f *fileDecoder) edgePort(cfg *Config, data []byte) {
	var doc yaml.Node
	if err := decodeYAML(data, &doc); err != nil {
		line, msg := yamlnode.SyntaxError(err)
		f.errorf(line, "", "invalid YAML: %s", msg)
		return
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	root = yamlnode.Deref(root)
	if root.Kind != yaml.MappingNode {
		f.errorf(root.Line, "", "expected an EdgePort resource (a mapping), got %s", yamlnode.Describe(root))
		return
	}

	var spec specFile
	w := &f.w
	w.Fields(root, "", yamlnode.Fields{
		"kind": func(v *yaml.Node, p string) {
			var k string
			w.Str(v, p, &k)
			if k != "" && !strings.EqualFold(k, "EdgePort") {
				f.errorf(v.Line, p, "expected EdgePort, got %q", k)
			}
		},
		"apiVersion": func(v *yaml.Node, p string) {
			var a string
			w.Str(v, p, &a)
			if a != "" && a != "v2beta1" && a != "v2" {
				f.errorf(v.Line, p, "unsupported apiVersion %q (want v2beta1 or v2)", a)
			}
		},
		"ref":      w.StrField(&cfg.Ref),
		"metadata": w.ObjectField(yamlnode.Fields{"region": w.StrField(&cfg.Region)}),
		"spec": func(v *yaml.Node, p string) {
			w.Object(v, p, func(key string, v *yaml.Node, p string) bool {
				return f.spec(cfg, &spec, key, v, p)
			})
		},
	})
	f.finish(cfg, &spec)
}

// decodeYAML decodes the first document of data.
func decodeYAML(data []byte, n *yaml.Node) error {
	err := yamlnode.Decode(yaml.NewDecoder(bytes.NewReader(data)), n)
	if err != nil && err.Error() == "EOF" {
		return fmt.Errorf("yaml: the file is empty")
	}
	return err
}

// specFile holds what the spec says before defaults are applied.
type specFile struct {
	transports      []Transport
	transportsSet   bool
	localnets       []string
	securityContext bool
}

func (f *fileDecoder) spec(cfg *Config, s *specFile, key string, v *yaml.Node, p string) bool {
	w := &f.w
	switch key {
	case "bindAddr":
		if !w.Str(v, p, &cfg.BindAddr) {
			break
		}
		if a, err := netip.ParseAddr(cfg.BindAddr); err != nil || a.Zone() != "" {
			f.errorf(v.Line, p, "%q is not an IP address", cfg.BindAddr)
		}
	case "externalAddrs":
		cfg.ExternalAddrs = nil
		w.StrList(v, p, &cfg.ExternalAddrs)
		for i, a := range cfg.ExternalAddrs {
			ip := yamlnode.Index(p, i)
			if !f.bad[ip] && !validHostPort(a) {
				f.errorf(f.lineOf(ip), ip, "%q is not a host or host:port", a)
			}
		}
		cfg.ExternalAddrs = slices.DeleteFunc(cfg.ExternalAddrs, func(a string) bool { return a == "" })
	case "localnets":
		w.StrList(v, p, &s.localnets)
		for i, n := range s.localnets {
			ip := yamlnode.Index(p, i)
			if f.bad[ip] {
				continue
			}
			net, err := parseNet(n)
			if err != nil {
				f.errorf(f.lineOf(ip), ip, "%v", err)
				continue
			}
			cfg.Localnets = append(cfg.Localnets, net)
		}
	case "methods":
		if yamlnode.IsNull(yamlnode.Deref(v)) {
			break
		}
		var ms []string
		w.StrList(v, p, &ms)
		cfg.Methods = nil
		for i, m := range ms {
			ip := yamlnode.Index(p, i)
			m = strings.ToUpper(m)
			switch {
			case f.bad[ip]:
			case !isToken(m):
				f.errorf(f.lineOf(ip), ip, "%q is not a SIP method", ms[i])
			case slices.Contains(cfg.Methods, m):
				f.errorf(f.lineOf(ip), ip, "duplicate method %s", m)
			default:
				cfg.Methods = append(cfg.Methods, m)
			}
		}
		if len(ms) == 0 {
			f.errorf(v.Line, p, "no methods")
		}
	case "unknownMethodAction":
		var a string
		w.Str(v, p, &a)
		switch {
		case strings.EqualFold(a, string(Discard)):
			cfg.UnknownMethodAction = Discard
		case strings.EqualFold(a, string(Respond)):
			cfg.UnknownMethodAction = Respond
		case a != "":
			f.errorf(v.Line, p, "invalid value %q (want Discard or Respond)", a)
		}
	case "transport":
		if yamlnode.IsNull(yamlnode.Deref(v)) {
			break
		}
		s.transportsSet = true
		transports := yamlnode.ListField(w, &s.transports, Transport{}, func(t *Transport) yamlnode.Fields {
			return yamlnode.Fields{
				"protocol": w.StrField(&t.Protocol),
				"port":     w.IntField(&t.Port),
				"bindAddr": w.StrField(&t.BindAddr),
			}
		})
		transports(v, p)
	case "securityContext":
		s.securityContext = true
		w.Fields(v, p, f.securityContext(&cfg.TLS))
	case "processor":
		// Routr's next hop; routr-go routes in process. Accepted silently
		// since every Routr EdgePort file has it.
	default:
		return false
	}
	return true
}

// securityContext lists the fields of spec.securityContext.
func (f *fileDecoder) securityContext(sc *SecurityContext) yamlnode.Fields {
	w := &f.w
	return yamlnode.Fields{
		"keyStore":           w.StrField(&sc.KeyStore),
		"keyStorePassword":   w.StrField(&sc.KeyStorePassword),
		"keyStoreType":       w.StrField(&sc.KeyStoreType),
		"trustStore":         w.StrField(&sc.TrustStore),
		"trustStorePassword": w.StrField(&sc.TrustStorePassword),
		"debugging":          w.BoolField(&sc.Debugging),
		"certFile":           w.StrField(&sc.CertFile),
		"keyFile":            w.StrField(&sc.KeyFile),
		"client": w.ObjectField(yamlnode.Fields{
			"protocols": w.StrListField(&sc.ClientProtocols),
			"authType": func(v *yaml.Node, p string) {
				w.Str(v, p, &sc.ClientAuthType)
				ok := false
				for _, t := range []string{"Disabled", "DisabledAll", "Wanted", "Required"} {
					if strings.EqualFold(sc.ClientAuthType, t) {
						sc.ClientAuthType, ok = t, true
					}
				}
				if !ok && sc.ClientAuthType != "" {
					f.errorf(v.Line, p, "invalid value %q (want Disabled, DisabledAll, Wanted or Required)", sc.ClientAuthType)
				}
			},
		}),
	}
}

// finish checks the transports as a whole and fills in defaults.
func (f *fileDecoder) finish(cfg *Config, s *specFile) {
	if !s.transportsSet {
		for i := range cfg.Transports {
			cfg.Transports[i].BindAddr = cfg.BindAddr
		}
		return
	}
	cfg.Transports = nil
	type socket struct {
		stream bool
		addr   string
		port   int
	}
	used := make(map[socket]int)
	protos := make(map[string]int)
	secure := false
	for i, t := range s.transports {
		p := "spec.transport[" + strconv.Itoa(i) + "]"
		t.Protocol = strings.ToLower(t.Protocol)
		bad := false
		switch t.Protocol {
		case "udp", "tcp", "tls", "ws", "wss":
		case "":
			f.errorf(f.lineOf(p), p+".protocol", "required field missing")
			bad = true
		default:
			f.errorf(f.lineOf(p+".protocol"), p+".protocol", "invalid value %q (want udp, tcp, tls, ws or wss)", t.Protocol)
			bad = true
		}
		if f.bad[p+".port"] {
			bad = true
		} else if _, ok := f.lines[p+".port"]; !ok {
			f.errorf(f.lineOf(p), p+".port", "required field missing")
			bad = true
		} else if t.Port < 1 || t.Port > 65535 {
			f.errorf(f.lineOf(p+".port"), p+".port", "must be 1..65535, got %d", t.Port)
			bad = true
		}
		if t.BindAddr == "" {
			t.BindAddr = cfg.BindAddr
		} else if a, err := netip.ParseAddr(t.BindAddr); err != nil || a.Zone() != "" {
			f.errorf(f.lineOf(p+".bindAddr"), p+".bindAddr", "%q is not an IP address", t.BindAddr)
			bad = true
		}
		if bad {
			continue
		}
		if first, dup := protos[t.Protocol]; dup {
			f.errorf(f.lineOf(p+".protocol"), p+".protocol", "%s is also spec.transport[%d]; one entry per protocol", t.Protocol, first)
			continue
		}
		protos[t.Protocol] = i
		// udp and a stream transport may share a port; two stream
		// transports (tcp, tls, ws, wss) may not.
		k := socket{t.Protocol != "udp", t.BindAddr, t.Port}
		if first, dup := used[k]; dup {
			f.errorf(f.lineOf(p+".port"), p+".port", "port %d is also used by spec.transport[%d]", t.Port, first)
			continue
		}
		used[k] = i
		secure = secure || t.Secure()
		cfg.Transports = append(cfg.Transports, t)
	}
	if len(s.transports) == 0 {
		f.errorf(f.lineOf("spec.transport"), "spec.transport", "no transports")
	}
	if secure {
		switch {
		case !cfg.TLS.Configured():
			f.errorf(f.lineOf("spec.securityContext"), "spec.securityContext", "tls and wss transports need keyStore, or certFile and keyFile")
		case cfg.TLS.KeyStore != "" && cfg.TLS.KeyStoreType != "" && !strings.EqualFold(cfg.TLS.KeyStoreType, "pkcs12"):
			f.errorf(f.lineOf("spec.securityContext.keyStoreType"), "spec.securityContext.keyStoreType", "unsupported key store type %q (want pkcs12)", cfg.TLS.KeyStoreType)
		}
	}
}

// isToken reports whether s is an RFC 3261 token, as SIP method names are.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("-.!%*_+`'~", c) >= 0) {
			return false
		}
	}
	return true
}

// validHostPort reports whether s is a host name or IP, optionally with a
// port.
func validHostPort(s string) bool {
	host := s
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return false
		}
		host = h
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Zone() == ""
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, l := range strings.Split(host, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
