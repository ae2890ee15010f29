package main

import (
	"strings"
	"testing"

	"github.com/routr-go/routr/internal/config"
)

func TestInstanceURI(t *testing.T) {
	udp := config.Transport{Protocol: "udp", BindAddr: "10.0.0.5", Port: 5060}
	tcp := config.Transport{Protocol: "tcp", BindAddr: "0.0.0.0", Port: 5060}
	for _, tc := range []struct {
		name       string
		transports []config.Transport
		cluster    config.Cluster
		want, err  string
	}{
		{"udp listener", []config.Transport{udp, tcp}, config.Cluster{}, "sip:10.0.0.5:5060;transport=udp", ""},
		{"explicit address", []config.Transport{tcp}, config.Cluster{Address: "10.0.0.9:5070", Transport: "tcp"}, "sip:10.0.0.9:5070;transport=tcp", ""},
		{"wildcard bind", []config.Transport{udp, tcp}, config.Cluster{Transport: "tcp"}, "", "CLUSTER_ADDRESS"},
		{"no such listener", []config.Transport{tcp}, config.Cluster{}, "", "CLUSTER_TRANSPORT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := instanceURI(&config.Config{Transports: tc.transports, Cluster: tc.cluster})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
