// Package config provides routr-go's configuration as one Config value,
// read from Routr's EdgePort file (CONFIG_PATH) and environment variables.
//
// # The EdgePort file
//
// The file is Routr's EdgePort resource, in YAML or JSON:
//
//	kind: EdgePort
//	apiVersion: v2beta1            # or v2
//	ref: edgeport-01               # names this edge in events
//	metadata:
//	  region: default
//	spec:
//	  bindAddr: 0.0.0.0            # default listen address
//	  externalAddrs: [203.0.113.10]   # advertised behind NAT
//	  localnets: [10.0.0.0/8]      # address, CIDR or address/netmask
//	  methods: [REGISTER, INVITE, ACK, BYE, CANCEL, MESSAGE, OPTIONS]
//	  unknownMethodAction: Discard # or Respond (405)
//	  transport:
//	    - protocol: udp            # udp, tcp, tls, ws, wss
//	      port: 5060
//	    - protocol: tls
//	      port: 5061
//	      bindAddr: 10.0.0.5       # optional, else spec.bindAddr
//	  securityContext:             # needed by tls and wss
//	    keyStore: /etc/routr/certs/signaling.p12
//	    keyStorePassword: changeme
//	    keyStoreType: pkcs12
//	    certFile: server.crt       # or PEM files (routr-go only)
//	    keyFile: server.key
//	    client: {protocols: [TLSv1.2], authType: DisabledAll}
//
// As in Routr there is one transport per protocol; udp may share a port
// with a stream transport, two stream transports may not share one.
// spec.processor is accepted and ignored (routr-go routes in process).
// Unknown fields are accepted and listed in Config.Warnings. A missing
// transport list or method list means the defaults (udp and tcp on 5060;
// REGISTER, INVITE, ACK, BYE, CANCEL, MESSAGE, OPTIONS).
//
// # Environment
//
// Variables override the file. Booleans that come from Routr follow
// Java's Boolean.parseBoolean, as Routr reads them: "true" in any case is
// true, anything else false. routr-go's own booleans accept true/false/1/0
// and refuse anything else. Durations are a number of seconds or a Go
// duration ("90s", "5m", "4h"). Lists are comma-separated.
//
//	Variable                        Default                  Meaning
//	CONFIG_PATH                     config/edgeport.yaml     EdgePort file; when unset and the default is absent, built-in defaults
//	PATH_TO_RESOURCES               config/resources         directory of resource files
//	DATABASE_URL                    data/routr.db (default)  postgres://… or sqlite:<path>; see Storage
//	ENCRYPTION_KEY                  generated (SQLite)       32-byte key sealing Credentials' passwords in the database
//	EXTERNAL_ADDRS                  spec.externalAddrs       replaces the file's list
//	LOCALNETS                       spec.localnets           replaces the file's list
//	IGNORE_LOOPBACK_FROM_LOCALNETS  false (Java bool)        leave loopback out of detected localnets
//	HOSTNAME                        ref                      overrides ref, as Routr does (a pod's name)
//	ENABLE_HEALTHCHECKS             false (Java bool)        serve GET /healthz (Routr: on port 8080)
//	HTTP_ADDR                       0.0.0.0:8080             health and metrics listener
//	LOG_LEVEL                       info                     error, warn, info, verbose or debug (Routr's names)
//	REGISTRAR_MIN_EXPIRES           60                       shortest registration accepted (423 below)
//	REGISTRAR_MAX_EXPIRES           3600                     longest registration granted
//	REGISTRAR_DEFAULT_EXPIRES       3600                     granted when none is asked for
//	AUTH_ALGORITHMS                 MD5,SHA-256              digest algorithms, in offer order
//	AUTH_NONCE_TTL                  5m                       nonce lifetime
//	AUTH_SECRET                     random per process       nonce key; share it between instances
//	NATS_PUBLISHER_ENABLED          false (Java bool)        publish events to NATS
//	NATS_PUBLISHER_URL              nats://localhost:4222    server URLs; host:port means nats://host:port
//	NATS_PUBLISHER_SUBJECT          routr                    subject events are published on
//	CONSOLE_PUBLISHER_ENABLED       false (Java bool)        print events to standard output
//	EMBEDDED_NATS                   false                    start an in-process NATS server
//	EVENTS_QUEUE_SIZE               65536                    events buffered between SIP and publishers
//	EVENTS_DURABLE                  false                    publish through JetStream
//	EVENTS_STREAM_REPLICAS          3, or 1 on a smaller cluster  replicas of the events stream the edge creates
//	MAX_CALL_DURATION               4h                       end longer calls; 0 means no limit
//	LOCATION_MAX_BINDINGS           1000000                  cap on registered contacts
//	SIP_TRANSACTION_LINGER          5s                       keep finished UDP INVITE transactions this long
//	SIP_UDP_SOCKETS                 GOMAXPROCS               sockets per UDP listener (SO_REUSEPORT)
//	SIP_RESPONSE_CACHE_SIZE         33554432                 bytes of final responses kept for retransmissions
//	GC_MIN_HEAP                     192                      MiB of heap before the collector runs, where GOGC alone would run it sooner; 0 off
//	SIP_MAX_MESSAGE_SIZE            32768                    largest SIP message in bytes (513 beyond)
//	SIP_MAX_TRANSACTIONS            250000                   server transactions alive at once (503 beyond)
//	SIP_OVERLOAD_RETRY_AFTER        5                        Retry-After of those 503s, whole seconds
//	SIP_MAX_CONNECTIONS             50000                    accepted TCP/TLS/WS/WSS connections in total
//	SIP_MAX_CONNECTIONS_PER_SOURCE  1000                     accepted connections per source IP address
//	SIP_CONNECTION_IDLE_TIMEOUT     REGISTRAR_MAX_EXPIRES+1m close a connection silent this long
//	SIP_CONNECTION_WRITE_TIMEOUT    10s                      drop a connection whose write blocks this long
//	SIP_CONNECTION_HANDSHAKE_TIMEOUT 10s                     close a connection without first bytes by then
//	DRAIN_TIMEOUT                   10s                      on SIGTERM, serve calls in progress this long
//
// docs/configuration.md has the same table for users.
package config
