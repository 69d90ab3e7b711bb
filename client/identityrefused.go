package client

import (
	"errors"
	"strings"
)

// creatorDenied is how a Fabric peer refuses a proposal whose creator (the
// client's certificate) its channel MSPs do not accept: a revoked
// certificate (the org's CRL in the channel configuration lists it), an
// expired one, one of no channel MSP, or a signature that does not verify.
// The peer logs which; the client learns only this.
const creatorDenied = "access denied: channel ["

// signerForbidden is how the orderer, through the gateway, refuses a
// transaction whose signer is no channel writer (its certificate revoked
// after it was endorsed, for one).
const signerForbidden = "status=FORBIDDEN"

// IdentityRefused reports whether the peers refused the call because of
// the caller's identity itself rather than the call: every later call with
// that identity fails the same way until it is replaced (enroll a new one).
// It looks at the gateway's message and at every endorser's.
func (e *TransactionError) IdentityRefused() bool {
	if e.Code != "" {
		return false // the chaincode ran: the identity was accepted
	}
	if strings.Contains(e.Message, creatorDenied) || strings.Contains(e.Message, signerForbidden) {
		return true
	}
	for _, d := range e.Endorsers {
		if strings.Contains(d.Message, creatorDenied) {
			return true
		}
	}
	return false
}

// IsIdentityRefused reports whether err is a ledger call the peers refused
// because of the caller's identity (TransactionError.IdentityRefused).
func IsIdentityRefused(err error) bool {
	var te *TransactionError
	return errors.As(err, &te) && te.IdentityRefused()
}
