package network

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// joinOrderer joins an orderer to the channel with the channel participation
// API (what `osnadmin channel join` does).
func joinOrderer(ctx context.Context, hc *http.Client, adminAddr, blockPath string) error {
	block, err := os.ReadFile(blockPath)
	if err != nil {
		return fmt.Errorf("read genesis block: %w", err)
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("config-block", filepath.Base(blockPath))
	if err != nil {
		return err
	}
	if _, err := fw.Write(block); err != nil {
		return err
	}
	if err := mw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+adminAddr+"/participation/v1/channels", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("join channel: %d %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}

// peerCLI runs the peer command as an org's admin against the org's peer.
func (n *Network) peerCLI(ctx context.Context, org *OrgState, args ...string) ([]byte, error) {
	p, err := n.state.node(org.Peer)
	if err != nil {
		return nil, err
	}
	admin := n.adminMSPDir(org)
	cmd := exec.CommandContext(ctx, n.state.Binaries.Peer, args...)
	cmd.Dir = p.Dir
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"FABRIC_CFG_PATH=" + p.Dir,
		"FABRIC_LOGGING_SPEC=warning",
		"CORE_PEER_LOCALMSPID=" + org.MSPID,
		"CORE_PEER_MSPCONFIGPATH=" + admin,
		"CORE_PEER_ADDRESS=" + p.Address(),
		"CORE_PEER_TLS_ENABLED=true",
		"CORE_PEER_TLS_ROOTCERT_FILE=" + n.peerTLSCA(org),
	}
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("peer %s (as %s admin): %w: %s", strings.Join(args[:min(3, len(args))], " "), org.Name,
			err, strings.TrimSpace(tail(errOut.String()+out.String(), 10)))
	}
	return out.Bytes(), nil
}

// ordererArgs are the flags peer CLI commands need to reach an orderer.
func (n *Network) ordererArgs() ([]string, error) {
	o := n.firstLiveOrderer()
	if o == nil {
		return nil, fmt.Errorf("no orderer is running")
	}
	return []string{"-o", o.Address(), "--ordererTLSHostnameOverride", o.Host, "--tls", "--cafile", n.ordererTLSCA()}, nil
}

func (n *Network) firstLiveOrderer() *Node {
	for _, o := range n.state.nodesOf(KindOrderer) {
		if processAlive(o.PID, o.StartTicks) {
			return o
		}
	}
	return nil
}

// retry calls f until it succeeds, ctx ends or the timeout passes; for
// Fabric calls that fail transiently right after a bring-up (no Raft leader
// yet, a peer not yet connected to the orderer).
func retry(ctx context.Context, timeout time.Duration, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 200 * time.Millisecond
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
		if delay < 2*time.Second {
			delay *= 2
		}
	}
}
