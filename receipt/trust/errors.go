package trust

import (
	"fmt"
	"strings"
)

// IdentityError says why a serialized identity is not a valid signer under the
// channel configuration.
type IdentityError struct {
	MSPID   string // the MSP ID the identity claims; empty when it could not be read
	Subject string // the certificate's subject ("CN=..."); empty when it could not be read
	Reason  string
}

func (e *IdentityError) Error() string {
	if l := label(e.MSPID, e.Subject); l != "" {
		return "identity " + l + ": " + e.Reason
	}
	return "identity: " + e.Reason
}

// SignatureError says why a signature by a valid identity does not verify.
type SignatureError struct {
	MSPID   string
	Subject string
	Reason  string
}

func (e *SignatureError) Error() string {
	return "signature by " + label(e.MSPID, e.Subject) + ": " + e.Reason
}

// PolicyError says why signatures do not satisfy a policy: what was satisfied,
// what was missing, and why each offered signature that did not count did not.
type PolicyError struct {
	Path string // the policy's absolute path, e.g. /Channel/Application/Endorsement
	// Rule is the policy as Fabric's policy language would write it:
	// "MAJORITY of Endorsement", "OR('Org1MSP.peer')"; empty when NotFound.
	Rule string
	// Reason is what was satisfied and what was missing, or why the policy
	// cannot be evaluated, or why it does not exist.
	Reason string
	// Signatures holds, for each offered signature that counted for nothing,
	// "signature <index> (<mspid> <subject>): <why>", index from 0.
	Signatures []string
	// NotFound: there is no policy at Path.
	NotFound bool
	// Undecided: the outcome depends on a principal or rule this package does
	// not implement, so it refuses to decide.
	Undecided bool
}

func (e *PolicyError) Error() string {
	var b strings.Builder
	switch {
	case e.NotFound:
		fmt.Fprintf(&b, "policy %s is not in the channel configuration: %s", e.Path, e.Reason)
	case e.Undecided:
		fmt.Fprintf(&b, "policy %s (%s) cannot be evaluated: %s", e.Path, e.Rule, e.Reason)
	default:
		fmt.Fprintf(&b, "policy %s (%s) is not satisfied: %s", e.Path, e.Rule, e.Reason)
	}
	for _, s := range e.Signatures {
		b.WriteString("; ")
		b.WriteString(s)
	}
	return b.String()
}

func label(mspID, subject string) string {
	return strings.TrimSpace(mspID + " " + subject)
}
