package trust

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"github.com/hyperledger/fabric-protos-go-apiv2/msp"
	"google.golang.org/protobuf/proto"
)

// group is a config group and the policies it defines, compiled.
type group struct {
	path     string
	groups   map[string]*group
	policies map[string]*policy
}

// policy is one compiled policy: an implicit-meta or a signature policy.
type policy struct {
	group *group // the group that defines it
	meta  *metaPolicy
	sig   *sigPolicy
}

type metaPolicy struct {
	sub  string
	rule common.ImplicitMetaPolicy_Rule
}

type sigPolicy struct {
	rule       *node
	principals []principal
	// unsupported, when set, is why a principal a leaf refers to cannot be
	// evaluated by this package: the policy is then undecided.
	unsupported string
}

// node is a SignaturePolicy: a SignedBy leaf or an NOutOf gate.
type node struct {
	leaf     bool
	signedBy int
	n        int32
	rules    []*node
}

type principalKind int

const (
	byRole      principalKind = iota + 1
	byIdentity                // exact certificate
	never                     // Fabric evaluates it and it never matches (malformed, unknown role or classification)
	unsupported               // Fabric gives it a meaning this package does not implement
)

type principal struct {
	kind  principalKind
	mspID string
	role  string // "member", or a NodeOU role
	key   string // byIdentity: Identity.key
	desc  string // "a peer of Org1MSP"
	dsl   string // "'Org1MSP.peer'"
}

var roleNames = map[msp.MSPRole_MSPRoleType]string{
	msp.MSPRole_MEMBER: "member", msp.MSPRole_ADMIN: RoleAdmin, msp.MSPRole_CLIENT: RoleClient,
	msp.MSPRole_PEER: RolePeer, msp.MSPRole_ORDERER: RoleOrderer,
}

func newGroup(path string, cg *common.ConfigGroup) (*group, error) {
	g := &group{path: path, groups: map[string]*group{}, policies: map[string]*policy{}}
	for _, name := range sortedKeys(cg.GetGroups()) {
		sg, err := newGroup(path+"/"+name, cg.GetGroups()[name])
		if err != nil {
			return nil, err
		}
		g.groups[name] = sg
	}
	for _, name := range sortedKeys(cg.GetPolicies()) {
		p, err := compilePolicy(g, cg.GetPolicies()[name].GetPolicy())
		if err != nil {
			return nil, fmt.Errorf("policy %s/%s: %w", path, name, err)
		}
		g.policies[name] = p
	}
	return g, nil
}

func compilePolicy(g *group, p *common.Policy) (*policy, error) {
	if p == nil {
		return nil, errors.New("it is nil")
	}
	switch common.Policy_PolicyType(p.GetType()) {
	case common.Policy_IMPLICIT_META:
		imp := &common.ImplicitMetaPolicy{}
		if err := proto.Unmarshal(p.GetValue(), imp); err != nil {
			return nil, fmt.Errorf("implicit meta policy does not decode: %w", err)
		}
		return &policy{group: g, meta: &metaPolicy{sub: imp.GetSubPolicy(), rule: imp.GetRule()}}, nil
	case common.Policy_SIGNATURE:
		env := &common.SignaturePolicyEnvelope{}
		if err := proto.Unmarshal(p.GetValue(), env); err != nil {
			return nil, fmt.Errorf("signature policy does not decode: %w", err)
		}
		if env.GetVersion() != 0 {
			return nil, fmt.Errorf("signature policy has version %d, and Fabric knows only version 0", env.GetVersion())
		}
		sp := &sigPolicy{}
		for i, pr := range env.GetIdentities() {
			sp.principals = append(sp.principals, newPrincipal(i, pr))
		}
		var err error
		if sp.rule, err = sp.compile(env.GetRule()); err != nil {
			return nil, err
		}
		return &policy{group: g, sig: sp}, nil
	default:
		return nil, fmt.Errorf("type %d is neither SIGNATURE nor IMPLICIT_META", p.GetType())
	}
}

func (sp *sigPolicy) compile(r *common.SignaturePolicy) (*node, error) {
	switch t := r.GetType().(type) {
	case *common.SignaturePolicy_SignedBy:
		if t.SignedBy < 0 || int(t.SignedBy) >= len(sp.principals) {
			return nil, fmt.Errorf("signed_by %d is out of range: the policy has %d principals", t.SignedBy, len(sp.principals))
		}
		if p := sp.principals[t.SignedBy]; p.kind == unsupported && sp.unsupported == "" {
			sp.unsupported = p.desc
		}
		return &node{leaf: true, signedBy: int(t.SignedBy)}, nil
	case *common.SignaturePolicy_NOutOf_:
		n := &node{n: t.NOutOf.GetN()}
		for _, c := range t.NOutOf.GetRules() {
			child, err := sp.compile(c)
			if err != nil {
				return nil, err
			}
			n.rules = append(n.rules, child)
		}
		return n, nil
	default:
		return nil, errors.New("signature policy has an empty rule")
	}
}

func newPrincipal(i int, p *msp.MSPPrincipal) principal {
	cl := p.GetPrincipalClassification()
	bad := func(kind principalKind, why string) principal {
		return principal{kind: kind, desc: fmt.Sprintf("principal %d, %s", i, why), dsl: fmt.Sprintf("<principal %d>", i)}
	}
	switch cl {
	case msp.MSPPrincipal_ROLE:
		r := &msp.MSPRole{}
		if err := proto.Unmarshal(p.GetPrincipal(), r); err != nil {
			return bad(never, "a ROLE principal that does not decode")
		}
		name, ok := roleNames[r.GetRole()]
		if !ok {
			return bad(never, fmt.Sprintf("a ROLE principal with role %d, which is not MEMBER, ADMIN, CLIENT, PEER or ORDERER", r.GetRole()))
		}
		article := "a "
		if name == RoleAdmin || name == RoleOrderer {
			article = "an "
		}
		return principal{kind: byRole, mspID: r.GetMspIdentifier(), role: name,
			desc: article + name + " of " + r.GetMspIdentifier(), dsl: "'" + r.GetMspIdentifier() + "." + name + "'"}
	case msp.MSPPrincipal_IDENTITY:
		mspID, cert, certErr, err := parseSerialized(p.GetPrincipal())
		if err != nil || certErr != nil {
			return bad(never, "an IDENTITY principal that is not a serialized certificate")
		}
		l := label(mspID, subject(cert))
		return principal{kind: byIdentity, mspID: mspID, key: mspID + "\x00" + certKey(cert), desc: "identity " + l, dsl: "identity(" + l + ")"}
	case msp.MSPPrincipal_ORGANIZATION_UNIT, msp.MSPPrincipal_ANONYMITY, msp.MSPPrincipal_COMBINED:
		return bad(unsupported, fmt.Sprintf("of classification %s, which this verifier does not support (only ROLE and IDENTITY)", cl))
	default:
		return bad(never, fmt.Sprintf("of classification %d, which Fabric does not know", int32(cl)))
	}
}

// satisfies is Fabric's SatisfiesPrincipal for a valid identity.
func satisfies(id *Identity, p principal) bool {
	switch {
	case p.kind == byIdentity:
		return id.key == p.key
	case p.kind != byRole || id.MSPID != p.mspID:
		return false
	case p.role == "member":
		return true
	case p.role == RoleAdmin:
		return id.IsAdmin()
	default:
		return id.hasRole(p.role)
	}
}

// lookup finds a policy by a path relative to g ("Org1MSP/Endorsement") or
// absolute under it ("/Channel/Application/Endorsement"), as Fabric's policy
// manager does; when there is none it says why.
func (g *group) lookup(id string) (*policy, string) {
	rel := id
	if strings.HasPrefix(id, "/") {
		if !strings.HasPrefix(id, g.path+"/") {
			return nil, "it is not under " + g.path
		}
		rel = id[len(g.path)+1:]
	}
	parts := strings.Split(rel, "/")
	for _, name := range parts[:len(parts)-1] {
		next, ok := g.groups[name]
		if !ok {
			return nil, fmt.Sprintf("%s has no group %q", g.path, name)
		}
		g = next
	}
	p, ok := g.policies[parts[len(parts)-1]]
	if !ok {
		return nil, fmt.Sprintf("%s has no policy %q", g.path, parts[len(parts)-1])
	}
	return p, ""
}

// Evaluate decides, as Fabric v2.5 does, whether the signatures satisfy the
// policy at an absolute path such as /Channel/Orderer/BlockValidation or
// /Channel/Application/Endorsement, with identities validated as of at.
//
// Signatures are deduplicated by signer, invalid ones are dropped, and each
// valid signer satisfies at most one signed-by leaf of a signature policy
// (greedily, in order, as Fabric's cauthdsl: a failing n-out-of branch does
// not consume signers). An implicit-meta policy is satisfied when ANY (1), ALL
// or a MAJORITY (more than half) of its group's sub-groups satisfy their policy
// named sub_policy; a group with no sub-groups satisfies every rule, as in
// Fabric. A refusal is a *PolicyError saying what was missing and why each
// offered signature counted for nothing.
func (c *Channel) Evaluate(path string, signed []SignedData, at time.Time) error {
	return c.EvaluateVerified(path, c.Verified(signed, at))
}

// EvaluateVerified is Evaluate of a signature set verified once with
// Verified: a set judged against several policies is not verified again.
func (c *Channel) EvaluateVerified(path string, s *Signatures) error {
	if !strings.HasPrefix(path, "/") {
		return &PolicyError{Path: path, NotFound: true, Reason: "a policy path is absolute, like /Channel/Application/Endorsement"}
	}
	p, why := c.root.lookup(path)
	if p == nil {
		return &PolicyError{Path: path, NotFound: true, Reason: why}
	}
	return evaluate(path, p, s)
}

// Signatures is a signature set verified against one configuration
// (Channel.Verified): each signature's identity validated and its
// signature checked once, duplicates set aside.
type Signatures struct{ offers []offer }

// Verified verifies a signature set once, to be judged by EvaluateVerified
// and EvaluateSignaturePolicyVerified.
func (c *Channel) Verified(signed []SignedData, at time.Time) *Signatures {
	return &Signatures{offers: c.signers(signed, at)}
}

// Identities are the set's valid signers, in signature order.
func (s *Signatures) Identities() []*Identity {
	var out []*Identity
	for _, o := range s.offers {
		if o.id != nil {
			out = append(out, o.id)
		}
	}
	return out
}

// evaluate decides one compiled policy; path names it in errors.
func evaluate(path string, p *policy, s *Signatures) error {
	offers := s.offers
	e := &evaluation{}
	for _, o := range offers {
		if o.id != nil {
			e.signers = append(e.signers, o.id)
		}
	}
	out := e.eval(p)
	if out.ok {
		return nil
	}
	pe := &PolicyError{Path: path, Rule: p.String(), Reason: out.why}
	if out.undecided != "" {
		pe.Undecided, pe.Reason = true, out.undecided
	}
	for i, o := range offers {
		name := ""
		if o.label != "" {
			name = " (" + o.label + ")"
		}
		switch {
		case o.id == nil:
			pe.Signatures = append(pe.Signatures, fmt.Sprintf("signature %d%s: %s", i, name, o.reason))
		case !slices.ContainsFunc(e.principals, func(p principal) bool { return satisfies(o.id, p) }):
			pe.Signatures = append(pe.Signatures, fmt.Sprintf("signature %d%s: valid, but %s, which no principal of the policy accepts", i, name, describe(o.id)))
		}
	}
	return pe
}

func describe(id *Identity) string {
	switch id.Role {
	case "":
		return "a member of " + id.MSPID
	case RoleAdmin, RoleOrderer:
		return "an " + id.Role + " of " + id.MSPID
	default:
		return "a " + id.Role + " of " + id.MSPID
	}
}

// evaluation is one Evaluate: the valid signers, and the principals of every
// signature policy it consulted.
type evaluation struct {
	signers    []*Identity
	principals []principal
}

type outcome struct {
	ok        bool
	undecided string // why the outcome cannot be decided
	why       string // when not ok: what was satisfied and what was missing
}

func (e *evaluation) eval(p *policy) outcome {
	if p.sig != nil {
		return e.evalSignature(p.sig)
	}
	return e.evalMeta(p.group, p.meta)
}

func (e *evaluation) evalMeta(g *group, m *metaPolicy) outcome {
	names := sortedKeys(g.groups)
	n := len(names)
	var threshold int
	switch m.rule {
	case common.ImplicitMetaPolicy_ANY:
		threshold = 1
	case common.ImplicitMetaPolicy_ALL:
		threshold = n
	case common.ImplicitMetaPolicy_MAJORITY:
		threshold = n/2 + 1
	default:
		return outcome{undecided: fmt.Sprintf("its rule %d is not ANY, ALL or MAJORITY", m.rule)}
	}
	if n == 0 {
		threshold = 0 // Fabric: with no sub-groups, every rule is satisfied
	}
	var sat, open, fails []string
	for _, name := range names {
		sub, why := g.groups[name].lookup(m.sub)
		if sub == nil {
			fails = append(fails, name+": "+why)
			continue
		}
		switch o := e.eval(sub); {
		case o.ok:
			sat = append(sat, name)
		case o.undecided != "":
			open = append(open, name+": "+o.undecided)
		case sub.meta != nil:
			fails = append(fails, name+": ["+o.why+"]")
		default:
			fails = append(fails, name+": "+o.why)
		}
	}
	if len(sat) >= threshold {
		return outcome{ok: true}
	}
	noun := "groups"
	if g.path == "/Channel/Application" || g.path == "/Channel/Orderer" {
		noun = "orgs"
	}
	count := fmt.Sprintf("%d of %d %s satisfied", len(sat), n, noun)
	if len(sat) > 0 {
		count += " (" + strings.Join(sat, ", ") + ")"
	}
	count += fmt.Sprintf(", %d needed", threshold)
	if len(sat)+len(open) >= threshold {
		return outcome{undecided: count + ", and the rest depends on " + strings.Join(open, "; ")}
	}
	return outcome{why: count + "; " + strings.Join(fails, "; ")}
}

// trace is what each node of one signature-policy evaluation came to.
type trace map[*node]int // leaf: 1 if satisfied; gate: how many rules were satisfied

func (t trace) ok(n *node) bool {
	if n.leaf {
		return t[n] == 1
	}
	return int32(t[n]) >= n.n
}

func (e *evaluation) evalSignature(sp *sigPolicy) outcome {
	e.principals = append(e.principals, sp.principals...)
	if sp.unsupported != "" {
		return outcome{undecided: sp.unsupported}
	}
	t := trace{}
	if e.node(sp, sp.rule, make([]bool, len(e.signers)), t) {
		return outcome{ok: true}
	}
	return outcome{why: e.explain(sp, sp.rule, t)}
}

// node is Fabric's compiled cauthdsl evaluator: a leaf takes the first unused
// signer that satisfies its principal; a gate evaluates every rule on a copy
// of used and keeps the copy only when the rule is satisfied.
func (e *evaluation) node(sp *sigPolicy, n *node, used []bool, t trace) bool {
	if n.leaf {
		p := sp.principals[n.signedBy]
		for i, id := range e.signers {
			if !used[i] && satisfies(id, p) {
				used[i] = true
				t[n] = 1
				return true
			}
		}
		return false
	}
	tmp := make([]bool, len(used))
	for _, r := range n.rules {
		copy(tmp, used)
		if e.node(sp, r, tmp, t) {
			t[n]++
			copy(used, tmp)
		}
	}
	return t.ok(n)
}

func (e *evaluation) explain(sp *sigPolicy, n *node, t trace) string {
	if n.leaf {
		p := sp.principals[n.signedBy]
		switch {
		case p.kind == never:
			return p.desc + ", can never be satisfied"
		case slices.ContainsFunc(e.signers, func(id *Identity) bool { return satisfies(id, p) }):
			return "no signature by " + p.desc + " that another part of the policy did not already count"
		default:
			return "no signature by " + p.desc
		}
	}
	var missing []string
	for _, r := range n.rules {
		if !t.ok(r) {
			missing = append(missing, e.explain(sp, r, t))
		}
	}
	if n.n == 1 && len(n.rules) == 1 {
		return missing[0]
	}
	s := fmt.Sprintf("%d of %s satisfied, %d needed", t[n], sp.dsl(n), n.n)
	if len(missing) > 0 {
		s += ": " + strings.Join(missing, "; ")
	}
	return s
}

// String is the policy as Fabric's policy language writes it.
func (p *policy) String() string {
	if p.sig != nil {
		return p.sig.dsl(p.sig.rule)
	}
	if name, ok := common.ImplicitMetaPolicy_Rule_name[int32(p.meta.rule)]; ok {
		return name + " of " + p.meta.sub
	}
	return fmt.Sprintf("rule %d of %s", p.meta.rule, p.meta.sub)
}

func (sp *sigPolicy) dsl(n *node) string {
	if n.leaf {
		return sp.principals[n.signedBy].dsl
	}
	parts := make([]string, len(n.rules))
	for i, r := range n.rules {
		parts[i] = sp.dsl(r)
	}
	args := strings.Join(parts, ", ")
	switch {
	case n.n == 1:
		return "OR(" + args + ")"
	case int(n.n) == len(n.rules):
		return "AND(" + args + ")"
	default:
		return fmt.Sprintf("OutOf(%d, %s)", n.n, args)
	}
}
