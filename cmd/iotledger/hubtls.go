package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/client/device"
)

// MQTT transport of `iotledger hub` and `iotledger sim`: TLS unless told
// otherwise. The hub serves the certificate of --tls-cert/--tls-key or, by
// default, the one `network up` had the org's CA issue (the profile's
// hubTLS); plaintext takes --insecure-plaintext and, on an address other
// than loopback, --allow-plaintext-on-network as well. Devices pin the
// org's CA (the profile's hubTLS.caCert) or --ca.

// validateTransport checks the hub's TLS and plaintext flags against the
// MQTT address, before anything listens.
func (o *hubOptions) validateTransport() error {
	switch {
	case o.plaintext && (o.tlsCert != "" || o.tlsKey != ""):
		return usageErrorf("--insecure-plaintext and --tls-cert/--tls-key: choose TLS or plaintext")
	case o.plaintextOnNetwork && !o.plaintext:
		return usageErrorf("--allow-plaintext-on-network goes with --insecure-plaintext (it allows plaintext off loopback)")
	case !o.plaintext:
		return nil
	}
	loopback, err := isLoopback(o.mqtt)
	if err != nil {
		return usageErrorf("invalid --mqtt: %w", err)
	}
	if !loopback && !o.plaintextOnNetwork {
		return usageErrorf("--insecure-plaintext on %s, which is not a loopback address: connect tokens, readings and commands "+
			"would cross the network in clear; serve TLS (the default), or add --allow-plaintext-on-network on a network that is yours alone", o.mqtt)
	}
	return nil
}

// isLoopback tells whether a listen address is reachable from this host
// only. An empty host (every interface) and host names other than
// localhost are not: a name may resolve to anything.
func isLoopback(hostport string) (bool, error) {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return false, err
	}
	if host == "localhost" {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback(), nil
}

// warnPlaintext says, on stderr and in the log, that MQTT is served in clear.
func warnPlaintext(w io.Writer, log *slog.Logger, addr string) {
	fmt.Fprintf(w, "WARNING: serving MQTT without TLS on %s (--insecure-plaintext): connect tokens, readings and commands travel in clear\n", addr)
	log.Warn("MQTT without TLS", "mqtt", addr, "flag", "--insecure-plaintext")
}

// serverTLS is the hub's TLS configuration (nil for plaintext) and what it
// comes from, for the start-up line.
func (o *hubOptions) serverTLS(p *client.Profile) (*tls.Config, string, error) {
	if o.plaintext {
		return nil, "plaintext", nil
	}
	cert, key, source := o.tlsCert, o.tlsKey, "--tls-cert/--tls-key"
	if cert == "" {
		if p.HubTLS == nil {
			return nil, "", errors.New("no TLS certificate for the hub: the connection profile has no hubTLS " +
				"(`iotledger network up` records one; a network started by an older version lacks it): " +
				"pass --tls-cert and --tls-key, or --insecure-plaintext to serve MQTT without TLS on loopback")
		}
		cert, key, source = p.HubTLS.Cert, p.HubTLS.Key, "the profile's hubTLS"
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", source, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, "TLS, " + cert, nil
}

// simTransport says how simulated devices reach the hub: pinning --ca, or
// the CA of the org's profile, or in plaintext when asked.
func simTransport(o simOptions, l *ledgerCmd) (*x509.CertPool, error) {
	switch {
	case o.plaintext && o.caFile != "":
		return nil, usageErrorf("--insecure-plaintext and --ca: choose TLS or plaintext")
	case o.plaintext:
		return nil, nil
	case o.caFile != "":
		pool, err := device.LoadRootCAs(o.caFile)
		if err != nil {
			return nil, fmt.Errorf("--ca: %w", err)
		}
		return pool, nil
	}
	if err := l.lf.validate(); err != nil {
		return nil, err
	}
	p, err := l.lf.loadProfile()
	if err != nil {
		return nil, fmt.Errorf("the hub's CA, which devices pin: %w (or pass --ca, or --insecure-plaintext for a plaintext hub)", err)
	}
	if p.HubTLS == nil {
		return nil, errors.New("the connection profile has no hubTLS to take the hub's CA from: pass --ca (the CA of the hub's certificate), or --insecure-plaintext for a plaintext hub")
	}
	pool, err := device.LoadRootCAs(p.HubTLS.CACert)
	if err != nil {
		return nil, fmt.Errorf("the profile's hubTLS.caCert: %w", err)
	}
	return pool, nil
}
