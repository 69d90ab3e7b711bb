package reading

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// The batch Merkle tree follows RFC 6962 (Certificate Transparency): leaf
// hashes are SHA-256(0x00 || data), interior nodes SHA-256(0x01 || left ||
// right), and a tree of n leaves splits at the largest power of two below n.
// That makes proofs short (log2 n hashes) and the format well known.

// LeafHash commits to a reading's signed payload bytes and its signature.
// data = uint32be(len(payload)) || payload || signature.
func LeafHash(payload, signature []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte{0x00})
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(payload)))
	h.Write(n[:])
	h.Write(payload)
	h.Write(signature)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func nodeHash(left, right [32]byte) [32]byte {
	var buf [65]byte
	buf[0] = 0x01
	copy(buf[1:], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// largestPowerOfTwoBelow returns the largest power of two strictly less than n (n >= 2).
func largestPowerOfTwoBelow(n int) int {
	k := 1
	for k<<1 < n {
		k <<= 1
	}
	return k
}

// MerkleRoot computes the root of the leaves. An empty tree has no root.
func MerkleRoot(leaves [][32]byte) ([32]byte, error) {
	if len(leaves) == 0 {
		return [32]byte{}, errors.New("merkle: no leaves")
	}
	return subtreeRoot(leaves), nil
}

func subtreeRoot(leaves [][32]byte) [32]byte {
	if len(leaves) == 1 {
		return leaves[0]
	}
	k := largestPowerOfTwoBelow(len(leaves))
	return nodeHash(subtreeRoot(leaves[:k]), subtreeRoot(leaves[k:]))
}

// InclusionPath returns the audit path for leaf index in the tree of leaves.
func InclusionPath(leaves [][32]byte, index int) ([][32]byte, error) {
	if index < 0 || index >= len(leaves) {
		return nil, fmt.Errorf("merkle: leaf index %d out of range [0,%d)", index, len(leaves))
	}
	return path(leaves, index), nil
}

func path(leaves [][32]byte, m int) [][32]byte {
	if len(leaves) <= 1 {
		return nil
	}
	k := largestPowerOfTwoBelow(len(leaves))
	if m < k {
		return append(path(leaves[:k], m), subtreeRoot(leaves[k:]))
	}
	return append(path(leaves[k:], m-k), subtreeRoot(leaves[:k]))
}

// ErrProofMismatch means a proof does not lead to the expected root.
var ErrProofMismatch = errors.New("merkle: proof does not lead to the root")

// VerifyInclusion checks that leaf sits at index in a tree of size leaves
// with the given root (RFC 9162 section 2.1.3.2).
func VerifyInclusion(leaf [32]byte, index, size int, proof [][32]byte, root [32]byte) error {
	if size <= 0 || index < 0 || index >= size {
		return fmt.Errorf("merkle: leaf index %d out of range for tree size %d", index, size)
	}
	if len(proof) > 64 {
		return errors.New("merkle: proof longer than 64 hashes")
	}
	fn, sn := index, size-1
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return ErrProofMismatch
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			if fn&1 == 0 {
				for fn&1 == 0 && fn != 0 {
					fn >>= 1
					sn >>= 1
				}
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 || r != root {
		return ErrProofMismatch
	}
	return nil
}

// Hash is a 32-byte digest that encodes as lowercase hex in JSON.
type Hash [32]byte

// String renders the hash as hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalJSON encodes the hash as a hex string.
func (h Hash) MarshalJSON() ([]byte, error) { return json.Marshal(h.String()) }

// UnmarshalJSON decodes a 64-character hex string.
func (h *Hash) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	parsed, err := ParseHash(s)
	if err != nil {
		return err
	}
	*h = parsed
	return nil
}

// ParseHash decodes a 64-character hex digest.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 64 {
		return h, fmt.Errorf("hash: want 64 hex characters, got %d", len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("hash: %w", err)
	}
	return h, nil
}

// Proof shows that a signed reading is part of a batch committed on the
// ledger. Everything needed to check it offline is inside: the payload and
// signature, the device's enrolled key, and the audit path to the root.
type Proof struct {
	BatchID   string `json:"batchId"`   // the transaction ID that committed the batch
	Root      Hash   `json:"root"`      // Merkle root stored on the ledger
	Size      int    `json:"size"`      // readings in the batch
	Index     int    `json:"index"`     // this reading's position
	Path      []Hash `json:"path"`      // audit path, leaf to root
	Payload   []byte `json:"payload"`   // signed payload bytes (base64 in JSON)
	Signature []byte `json:"signature"` // device signature (base64 in JSON)
	PublicKey string `json:"publicKey"` // device key (PEM) enrolled when the batch committed
}

// VerifyError explains which check of a proof failed.
type VerifyError struct {
	Step string
	Err  error
}

func (e *VerifyError) Error() string { return fmt.Sprintf("proof %s: %v", e.Step, e.Err) }
func (e *VerifyError) Unwrap() error { return e.Err }

// Verify checks a proof offline: the payload parses, its signature verifies
// with the included key, and its leaf leads to the root.
func (p *Proof) Verify() (*Payload, error) {
	payload, err := ParsePayload(p.Payload)
	if err != nil {
		return nil, &VerifyError{"payload", err}
	}
	key, err := ParsePublicKey(p.PublicKey)
	if err != nil {
		return nil, &VerifyError{"key", err}
	}
	if err := key.Verify(Message(DomainReading, p.Payload), p.Signature); err != nil {
		return nil, &VerifyError{"signature", err}
	}
	path := make([][32]byte, len(p.Path))
	for i, h := range p.Path {
		path[i] = h
	}
	if err := VerifyInclusion(LeafHash(p.Payload, p.Signature), p.Index, p.Size, path, p.Root); err != nil {
		return nil, &VerifyError{"inclusion", err}
	}
	return &payload, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
