package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/iotledger/iotledger/client"
	"github.com/iotledger/iotledger/console"
	"github.com/iotledger/iotledger/console/identity"
	"github.com/iotledger/iotledger/index"
	"github.com/iotledger/iotledger/network"
)

type consoleOptions struct {
	listen    string
	tlsCert   string
	tlsKey    string
	clientCAs []string
	hubs      []string
}

func newConsoleCmd(g *globalOptions) *cobra.Command {
	l := newLedgerCmd(g, nil)
	var o consoleOptions
	cmd := &cobra.Command{
		Use:   "console [--org ORG | --profile connection.json] [--index URL] [--listen ADDR]",
		Short: "Serve the org's web console: fleet, live readings, alerts, commands, policies with Explain, audit trail",
		Long: `Serves one org's web console and its JSON API (docs/console-api.yaml) over HTTPS. People sign in
with their Fabric CA identity: the browser must present the client certificate of an identity of the
org's connection profile, issued by the org's CA, with the iotledger.role operator (read and write) or
auditor (read only). The console submits every change as that identity. Nothing is served without such
a certificate.

The server certificate is --tls-cert/--tls-key, by default the hub TLS certificate the org's CA issued
at ` + "`network up`" + ` (valid for localhost and 127.0.0.1). Client certificates are verified against
--client-ca, by default the org's CA certificate from the profile (hubTLS.caCert). Readings, alerts, the
audit trail and receipts come from the org's index (--index, kept by ` + "`iotledger index`" + `).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := l.lf.validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runConsole(ctx, cmd, l, o)
		},
	}
	l.lf.register(cmd)
	_ = cmd.PersistentFlags().MarkHidden("identity") // the console acts as whoever signs in
	l.registerIndex(cmd)
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8443", "address to serve HTTPS on")
	f.StringVar(&o.tlsCert, "tls-cert", "", "server certificate (PEM; default: the profile's hubTLS certificate)")
	f.StringVar(&o.tlsKey, "tls-key", "", "server key (PEM; default: the profile's hubTLS key)")
	f.StringArrayVar(&o.clientCAs, "client-ca", nil, "CA certificate that issues the org's identities (PEM; repeatable; default: the profile's hubTLS.caCert)")
	f.StringArrayVar(&o.hubs, "hub", nil, "health address of one of the org's hubs, e.g. http://127.0.0.1:9100 (repeatable): the fleet overview shows their connected devices")
	return cmd
}

func runConsole(ctx context.Context, cmd *cobra.Command, l *ledgerCmd, o consoleOptions) error {
	log := l.logger(cmd)
	p, err := l.lf.loadProfile()
	if err != nil {
		return err
	}
	cert, err := consoleServerCert(p, o)
	if err != nil {
		return err
	}
	cas := o.clientCAs
	if len(cas) == 0 {
		if p.HubTLS == nil || p.HubTLS.CACert == "" {
			return errors.New("no CA to verify client certificates with: give --client-ca (the org's Fabric CA certificate)")
		}
		cas = []string{p.HubTLS.CACert}
	}
	pool, err := identity.CertPool(cas...)
	if err != nil {
		return fmt.Errorf("--client-ca: %w", err)
	}
	conn, err := client.NewConnection(p)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	open := func(ctx context.Context, name string) (console.Ledger, error) {
		return client.Dial(ctx, conn, p, name, client.WithLogger(log))
	}
	var st index.Store
	if s, err := l.openReadIndex(ctx); err != nil {
		log.Warn("serving without the org's index: readings, alerts, audit trail and receipts are unavailable", "err", err)
	} else {
		st = s
		defer func() { _ = st.Close() }()
	}
	cfg := console.Config{Profile: p, Open: open, ClientCAs: pool, Certificate: cert, Index: st, Logger: log}
	if len(o.hubs) > 0 {
		cfg.Hubs = console.HubEndpoints{URLs: o.hubs}
	}
	if l.lf.profile == "" {
		if n, err := network.Load(l.lf.stateDir); err == nil {
			cfg.Health = networkHealth{n}
		}
	}
	srv, err := console.New(cfg)
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.listen, err)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "console of %s (%s) at https://%s/ — sign in with the client certificate of an operator or auditor identity of %s\n",
		p.Org, p.MSPID, ln.Addr(), l.lf.profilePath())
	log.Info("console serving", "org", p.Org, "addr", ln.Addr().String(), "index", st != nil, "health", cfg.Health != nil)
	return srv.Serve(ctx, ln)
}

// consoleServerCert is --tls-cert/--tls-key, or the profile's hub TLS pair.
func consoleServerCert(p *client.Profile, o consoleOptions) (tls.Certificate, error) {
	certFile, keyFile := o.tlsCert, o.tlsKey
	if (certFile == "") != (keyFile == "") {
		return tls.Certificate{}, usageErrorf("give both --tls-cert and --tls-key, or neither")
	}
	if certFile == "" {
		if p.HubTLS == nil {
			return tls.Certificate{}, errors.New("no server certificate: give --tls-cert and --tls-key (the profile has no hubTLS to fall back on)")
		}
		certFile, keyFile = p.HubTLS.Cert, p.HubTLS.Key
	}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("server certificate %s: %w", certFile, err)
	}
	return c, nil
}

// networkHealth reports a local network's status to the console.
type networkHealth struct{ n *network.Network }

func (h networkHealth) Health(ctx context.Context) (any, error) { return h.n.Status(ctx) }
