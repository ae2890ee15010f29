// Package resources provides the Routr v2 resource model (Domain, Agent,
// Credentials, Peer, Number, Trunk, AccessControlList), its loading from
// files, its validation and an atomically swappable snapshot of it.
//
// # Files
//
// A resources directory holds YAML or JSON files, each a list of resources
// as Routr's simpledata reads them (see [LoadDir]):
//
//	# agents.yaml
//	- apiVersion: v2beta1          # or v2
//	  kind: Agent                  # any case, as Routr lowercases it
//	  ref: agent-01                # unique across all kinds, no spaces
//	  metadata:
//	    name: John Doe
//	  spec:
//	    username: "1001"
//	    domainRef: domain-01
//	  extended: {any: thing}       # optional free-form object, any kind
//
// [Parse] decodes one file (syntax, kinds, field types, where each field
// is); [Build] checks values and references and links resources into a
// [Set]; both report every problem they find, not only the first, as a
// *[ValidationError] whose lines read
//
//	config/resources/agents.yaml:12: Agent "agent-01": spec.domainRef: references unknown Domain "domain-99"
//
// # Fields
//
// The Go structs are flat, like the models Routr maps its files into; the
// file paths are Routr's. "req" marks what Build requires.
//
//	Kind               file field                               Go field                  notes
//	(all)              apiVersion                      req      Base.APIVersion           v2beta1 or v2
//	(all)              ref                             req      Base.Ref                  no whitespace
//	(all)              metadata.name                            Base.Name
//	(all)              metadata.region                          Base.Region
//	(all)              extended                                 Base.Extended             map[string]any
//	Domain             spec.context.domainUri          req      DomainURI                 host name or IP; unique; lowercased
//	Domain             spec.accessControlListRef                AccessControlListRef      -> AccessControlList
//	Domain             spec.context.egressPolicies[].rule  req  EgressPolicies[].Rule     Go regexp (RE2)
//	Domain             spec.context.egressPolicies[].numberRef req EgressPolicies[].NumberRef -> Number
//	Agent              spec.username                   req      Username                  unique within the domain
//	Agent              spec.domainRef                  req      DomainRef                 -> Domain
//	Agent              spec.credentialsRef                      CredentialsRef            -> Credentials
//	Agent              spec.privacy                             Privacy                   Private or None, any case; default None
//	Agent              spec.enabled                             Enabled                   default true
//	Agent              spec.maxContacts                         MaxContacts               >= -1; 0 and -1 mean no limit
//	Agent              spec.expires                             Expires                   seconds, >= 0; 0 means no override
//	Credentials        spec.credentials.username       req      Username
//	Credentials        spec.credentials.password       req      Password
//	Peer               spec.username                   req      Username                  unique among peers
//	Peer               spec.aor                        req      AOR                       sip:... or backend:...
//	Peer               spec.contactAddr                         ContactAddr               host[:port]
//	Peer               spec.credentialsRef                      CredentialsRef            -> Credentials
//	Peer               spec.accessControlListRef                AccessControlListRef      -> AccessControlList
//	Peer               spec.loadBalancing.algorithm             BalancingAlgorithm        round-robin or least-sessions
//	Peer               spec.loadBalancing.withSessionAffinity   WithSessionAffinity
//	Peer               spec.enabled, maxContacts, expires       Enabled, ...              as for Agent
//	Number             metadata.geoInfo.city                    City
//	Number             metadata.geoInfo.country                 Country
//	Number             metadata.geoInfo.countryIsoCode          CountryISOCode
//	Number             spec.trunkRef                            TrunkRef                  -> Trunk
//	Number             spec.location.telUrl            req      TelURL                    tel:...; unique
//	Number             spec.location.aorLink                    AORLink                   sip:... or backend:...
//	Number             spec.location.sessionAffinityHeader      SessionAffinityHeader     letters, digits, dashes
//	Number             spec.location.extraHeaders[].name/value  ExtraHeaders              both required
//	Trunk              spec.inbound.uri                         InboundURI                host name or IP; unique; lowercased
//	Trunk              spec.inbound.accessControlListRef        AccessControlListRef      -> AccessControlList
//	Trunk              spec.inbound.credentialsRef              InboundCredentialsRef     -> Credentials
//	Trunk              spec.outbound.sendRegister               SendRegister
//	Trunk              spec.outbound.credentialsRef             OutboundCredentialsRef    -> Credentials
//	Trunk              spec.outbound.uris[]            req*     URIs                      *when outbound is present
//	Trunk              .uris[].uri.host                req      URIs[].Host               host name or IP
//	Trunk              .uris[].uri.user/port/transport          URIs[].User/Port/Transport port 1..65535; udp tcp tls sctp ws wss
//	Trunk              .uris[].priority/weight/enabled          URIs[].Priority/...       0..65535 / 1..65535 / default true
//	AccessControlList  spec.accessControlList.allow[]           Allow                     IP, CIDR or IPv4/netmask
//	AccessControlList  spec.accessControlList.deny[]            Deny                      likewise
//
// Build also sets the resolved pointers (Agent.Domain, Number.Trunk,
// EgressPolicy.Number and Regexp, ...) so that callers need no second
// lookup.
//
// # Where this differs from Routr
//
// Routr's files are accepted as they are. The differences are in what
// else is accepted or refused:
//
//   - Unknown fields are accepted and ignored, as Routr's JSON schemas do
//     (they do not forbid additional properties); each one is reported by
//     [Set.Warnings] so that a typo in an optional field (say
//     "acessControlListRef") can be seen with the check command.
//   - Routr's schema puts a Domain's accessControlListRef in spec.context
//     while its loader reads spec.accessControlListRef; both are accepted,
//     and two different values are an error.
//   - Length limits of Routr's schemas (username 4..60 characters, name up
//     to 60, ACL rules 7..18) are not enforced, and metadata.name is
//     optional; only what routing depends on is checked.
//   - Unquoted scalars are taken as written where a string is expected
//     (password: 1234 is "1234"); Routr rejects them as numbers. Integers
//     and booleans must be YAML/JSON integers and booleans.
//   - Kind names match in any case; transports and privacy in any case
//     (normalized to lower case and to Private/None).
//   - Egress rules are Go regular expressions (RE2), not JavaScript ones:
//     lookahead, lookbehind and backreferences are refused, and \d, \w, \s
//     match ASCII only. Like Routr they match anywhere in the number
//     unless anchored with ^ and $.
//   - Agent usernames must be unique within their domain (Routr's
//     database makes them unique globally); Peer usernames, domain URIs,
//     tel URLs and trunk inbound URIs must be unique, as Routr's database
//     requires. Several Peers may share an aor (see [Set.PeersByAOR]).
//   - ACL rules may be IPv6 as well; see [AccessControlList.Allows] for how
//     allow and deny combine (Routr v2 only consults allow).
//   - A file may hold a single resource instead of a list, or several YAML
//     documents.
package resources
