package hub

import "errors"

// LedgerIdentityRefused starts Health.Ledger when the peers refuse the
// hub's own Fabric identity (its certificate revoked through the org's CRL,
// expired, or of no channel MSP): the ledger answers, but nothing the hub
// asks or submits is accepted until it runs with another identity.
const LedgerIdentityRefused = "identity refused"

// identityRefusedAdvice says what to do about a refused hub identity.
const identityRefusedAdvice = "the peers refuse this hub's Fabric identity (certificate revoked, expired or of no channel MSP); " +
	"accepted readings stay in the outbox: enroll a new identity for the hub and restart it with that identity and the same --data"

// identityRefused reports whether err is a ledger call the peers refused
// because of the hub's identity. The SDK's errors (*client.TransactionError)
// say so through an IdentityRefused method, which keeps this package free of
// the SDK.
func identityRefused(err error) bool {
	var r interface{ IdentityRefused() bool }
	return errors.As(err, &r) && r.IdentityRefused()
}
