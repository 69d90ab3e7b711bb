package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	pkcs12 "software.sslmate.com/src/go-pkcs12"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/console"
	"github.com/iotledger/iotledger/console/identity"
)

// defaultDemoConsole is where the demo serves the hospital's console; when
// it is taken, the demo takes a free port instead.
const defaultDemoConsole = "127.0.0.1:8443"

// demoConsole is the hospital's web console the demo serves.
type demoConsole struct {
	url  string
	stop func()
}

// startConsole serves Org1's web console over the hospital's index and hub,
// as `iotledger console --org Org1 --hub …` would, and writes Org1's
// operator identity as a PKCS#12 file a browser imports.
func (d *demo) startConsole(ctx context.Context) error {
	if d.opts.console == "" {
		return nil
	}
	p, err := d.net.Profile(hospitalOrg)
	if err != nil {
		return err
	}
	if p.HubTLS == nil {
		return fmt.Errorf("%s's profile has no hubTLS: no certificate to serve the console with", hospitalOrg)
	}
	cert, err := consoleServerCert(p, consoleOptions{})
	if err != nil {
		return err
	}
	pool, err := identity.CertPool(p.HubTLS.CACert)
	if err != nil {
		return err
	}
	st, err := d.index(ctx, hospitalOrg)
	if err != nil {
		return err
	}
	at, err := d.place(hospitalOrg)
	if err != nil {
		return err
	}
	conn, err := client.NewConnection(p, at.dialer())
	if err != nil {
		return err
	}
	cfg := console.Config{
		Profile: p, ClientCAs: pool, Certificate: cert, Index: st, Health: networkHealth{d.net}, Logger: d.log,
		Open: func(ctx context.Context, name string) (console.Ledger, error) {
			return client.Dial(ctx, conn, p, name, client.WithLogger(d.log))
		},
	}
	if h := d.hubs[hospitalOrg]; h != nil {
		cfg.Hubs = console.HubEndpoints{URLs: []string{"http://" + h.HTTPAddr()}}
	}
	srv, err := console.New(cfg)
	if err != nil {
		_ = conn.Close()
		return err
	}
	addr, err := at.consoleAddr(d.opts.console)
	if err != nil {
		_ = conn.Close()
		return err
	}
	ln, err := at.listen(ctx, "tcp", addr)
	if err != nil && d.opts.console == defaultDemoConsole {
		d.say("%s is taken (%v): serving the console on a free port", addr, err)
		ln, err = at.listen(ctx, "tcp", at.addr("0"))
	}
	if err != nil {
		_ = conn.Close()
		return fmt.Errorf("--console %s: %w", d.opts.console, err)
	}
	p12, password, err := writeOperatorP12(p, filepath.Join(d.net.StateDir(), "demo-console"))
	if err != nil {
		_ = ln.Close()
		_ = conn.Close()
		return err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(sctx, ln) }()
	files, err := p.Identity("operator")
	if err != nil {
		cancel()
		return err
	}
	d.console = &demoConsole{url: "https://" + ln.Addr().String() + "/", stop: func() {
		cancel()
		if err := <-done; err != nil {
			d.miss("the console stopped: %v", err)
		}
		_ = srv.Close()
		_ = conn.Close()
	}}
	d.step("%s's web console at %s (%s)", hospitalOrg, d.console.url, at)
	d.say("sign in as %s's operator: import %s into the browser (password: %s)", hospitalOrg, p12, password)
	d.say("and trust %s's CA %s for the server certificate", hospitalOrg, p.HubTLS.CACert)
	d.say("(the same identity as PEM: certificate %s, key %s)", files.Cert, files.Key)
	if d.opts.keep {
		d.say("it keeps serving after the demo until Ctrl-C (KEEP=1)")
	} else {
		d.say("it serves until the demo ends; `make demo KEEP=1` keeps it serving afterwards")
	}
	return nil
}

// writeOperatorP12 writes the profile's operator certificate and key, with
// the org's CA, as dir/operator.p12 under a fresh random password.
func writeOperatorP12(p *client.Profile, dir string) (path, password string, err error) {
	files, err := p.Identity("operator")
	if err != nil {
		return "", "", err
	}
	pair, err := tls.LoadX509KeyPair(files.Cert, files.Key)
	if err != nil {
		return "", "", fmt.Errorf("operator identity of %s: %w", p.Org, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return "", "", fmt.Errorf("operator certificate %s: %w", files.Cert, err)
	}
	var cas []*x509.Certificate
	if p.HubTLS != nil && p.HubTLS.CACert != "" {
		caPEM, err := os.ReadFile(p.HubTLS.CACert)
		if err != nil {
			return "", "", err
		}
		cas, err = parseCerts(caPEM)
		if err != nil {
			return "", "", fmt.Errorf("CA certificate %s: %w", p.HubTLS.CACert, err)
		}
	}
	secret := make([]byte, 9)
	if _, err := rand.Read(secret); err != nil {
		return "", "", err
	}
	password = hex.EncodeToString(secret)
	data, err := pkcs12.Modern2023.Encode(pair.PrivateKey, leaf, cas, password)
	if err != nil {
		return "", "", fmt.Errorf("PKCS#12 of %s's operator: %w", p.Org, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	path = filepath.Join(dir, "operator.p12")
	if err := os.WriteFile(path, data, 0o600); err != nil { //nolint:gosec // G703: the network state directory the operator chose
		return "", "", err
	}
	return path, password, nil
}

func parseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out, nil
}
