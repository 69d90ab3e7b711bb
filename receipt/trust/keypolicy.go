package trust

import (
	"fmt"
	"time"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
)

// EvaluateSignaturePolicy decides whether the signatures satisfy a
// signature policy that is not in the channel configuration, such as a
// key-level endorsement policy (a marshalled common.SignaturePolicyEnvelope);
// name says in errors which policy it is.
func (c *Channel) EvaluateSignaturePolicy(name string, envelope []byte, signed []SignedData, at time.Time) error {
	return c.EvaluateSignaturePolicyVerified(name, envelope, c.Verified(signed, at))
}

// EvaluateSignaturePolicyVerified is EvaluateSignaturePolicy of a signature
// set verified once with Verified.
func (c *Channel) EvaluateSignaturePolicyVerified(name string, envelope []byte, s *Signatures) error {
	p, err := compilePolicy(nil, &common.Policy{Type: int32(common.Policy_SIGNATURE), Value: envelope})
	if err != nil {
		return fmt.Errorf("%s cannot be evaluated: %w", name, err)
	}
	return evaluate(name, p, s)
}
