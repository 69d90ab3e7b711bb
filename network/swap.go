package network

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// ReplaceChaincodeServer runs another chaincode server in place of one org's
// server of a deployed chaincode: it builds the Go main package pkg (relative
// to the source root, e.g. "./test/adversary/hostilecc"), stops the org's
// server and starts the new binary under the same node record: the same
// address and the same CORE_CHAINCODE_ID_NAME (the org's package ID), so the
// org's peer talks to it without any lifecycle change. env entries
// ("NAME=value") are added to the server's environment, replacing entries of
// the same name.
//
// This is how a test plays a member that runs modified chaincode behind its
// own peer. restore puts the original binary and environment back; it does
// nothing if the server has been replaced since (e.g. by a later deploy).
func (n *Network) ReplaceChaincodeServer(ctx context.Context, chaincode, org, pkg string, env ...string) (restore func(context.Context) error, err error) {
	if strings.TrimSpace(pkg) == "" {
		return nil, errors.New("replace chaincode server: the Go main package of the new server is required")
	}
	for _, e := range env {
		if name, _, ok := strings.Cut(e, "="); !ok || name == "" {
			return nil, fmt.Errorf("replace chaincode server: environment entry %q is not NAME=value", e)
		}
	}
	// Check before building: a wrong name should not cost a build.
	n.mu.Lock()
	err = n.reload()
	var nodeName, src, outDir string
	if err == nil {
		var nd *Node
		if nd, err = n.state.serverOf(chaincode, org); err == nil {
			nodeName, src = nd.Name, n.state.SourceDir
			outDir = filepath.Join(n.state.StateDir, "chaincode", chaincode, "replaced", strings.ToLower(nd.Org))
		}
	}
	n.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("replace chaincode server: %w", err)
	}

	bin, err := buildChaincode(ctx, src, outDir, pkg)
	if err != nil {
		return nil, fmt.Errorf("replace chaincode server %s: %w", nodeName, err)
	}

	unlock, err := n.exclusive(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	nd, err := n.state.serverOf(chaincode, org)
	if err != nil {
		return nil, fmt.Errorf("replace chaincode server: %w", err)
	}
	origCommand, origEnv := nd.Command, slices.Clone(nd.Env)
	if err := n.restartAs(ctx, nd, bin, mergeEnv(origEnv, env)); err != nil {
		return nil, fmt.Errorf("replace chaincode server %s: %w", nd.Name, err)
	}

	restore = func(ctx context.Context) error {
		unlock, err := n.exclusive(ctx)
		if err != nil {
			return err
		}
		defer unlock()
		nd, err := n.state.node(nodeName)
		if err != nil || nd.Command != bin {
			return nil // gone or replaced since: nothing of ours to undo
		}
		if err := n.restartAs(ctx, nd, origCommand, origEnv); err != nil {
			return fmt.Errorf("restore chaincode server %s: %w", nd.Name, err)
		}
		return nil
	}
	return restore, nil
}

// restartAs stops a chaincode server node and starts command with env under
// the same record (name, address, log), then waits until its port accepts
// connections: the peer dials a chaincode-as-a-service server when it next
// needs it, so a listening server is a ready one. The state is saved.
func (n *Network) restartAs(ctx context.Context, nd *Node, command string, env []string) error {
	if err := n.kids.stop(ctx, nd, 10*time.Second); err != nil {
		return err
	}
	nd.Command, nd.Env = command, env
	if err := n.startNodes(ctx, []*Node{nd}); err != nil {
		return err
	}
	return n.state.save()
}

// serverOf finds the node of an org's server of a deployed chaincode.
func (s *State) serverOf(chaincode, org string) (*Node, error) {
	cc := s.chaincode(chaincode)
	if cc == nil {
		names := make([]string, 0, len(s.Chaincodes))
		for _, c := range s.Chaincodes {
			names = append(names, c.Name)
		}
		return nil, fmt.Errorf("chaincode %q is not deployed on this network (deployed: %s)", chaincode, strings.Join(names, ", "))
	}
	o, err := s.org(org)
	if err != nil {
		return nil, err
	}
	name, ok := cc.Servers[o.Name]
	if !ok {
		return nil, fmt.Errorf("chaincode %s has no server of %s", chaincode, o.Name)
	}
	nd, err := s.node(name)
	if err != nil {
		return nil, err
	}
	if nd.Kind != KindChaincode {
		return nil, fmt.Errorf("node %s recorded as chaincode %s's server of %s is a %s", name, chaincode, o.Name, nd.Kind)
	}
	return nd, nil
}

// mergeEnv returns base with extra added; an extra entry replaces base
// entries of the same name, and a later extra entry an earlier one.
func mergeEnv(base, extra []string) []string {
	name := func(e string) string {
		n, _, _ := strings.Cut(e, "=")
		return n
	}
	out := make([]string, 0, len(base)+len(extra))
	for _, e := range base {
		if !slices.ContainsFunc(extra, func(x string) bool { return name(x) == name(e) }) {
			out = append(out, e)
		}
	}
	for i, e := range extra {
		if !slices.ContainsFunc(extra[i+1:], func(x string) bool { return name(x) == name(e) }) {
			out = append(out, e)
		}
	}
	return out
}
