package trust

import (
	"crypto/sha256"
	"testing"

	"github.com/hyperledger/fabric-protos-go-apiv2/common"
	"google.golang.org/protobuf/proto"
)

// FuzzFromConfigBlock feeds arbitrary bytes as a block, and as a config, and
// evaluates the usual policies of whatever parses: nothing may panic.
func FuzzFromConfigBlock(f *testing.F) {
	fx := newFixture(f)
	cfg := fx.config(f)
	block, err := proto.Marshal(configBlock(f, "iotledger", cfg, common.HeaderType_CONFIG))
	if err != nil {
		f.Fatal(err)
	}
	raw, err := proto.Marshal(cfg)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(block)
	f.Add(raw)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00, 0x12, 0x02, 0x0a, 0x00})
	signed := []SignedData{fx.sd(f, "orderer0", data), fx.sd(f, "peer0.org1", data), fx.sd(f, "peer0.org2", data)}
	f.Fuzz(func(t *testing.T, b []byte) {
		evaluate := func(c *Channel) {
			for _, p := range []string{"/Channel/Orderer/BlockValidation", "/Channel/Application/Endorsement", "/Channel/Writers", "/Channel/Admins"} {
				_ = c.Evaluate(p, signed, base)
			}
			_ = c.Satisfied(signed, base)
		}
		blk := &common.Block{}
		if proto.Unmarshal(b, blk) == nil {
			if c, err := FromConfigBlock(blk); err == nil {
				evaluate(c)
			}
			// Past the data hash check too.
			if blk.Header != nil && len(blk.GetData().GetData()) == 1 {
				h := sha256.Sum256(blk.Data.Data[0])
				blk.Header.DataHash = h[:]
				if c, err := FromConfigBlock(blk); err == nil {
					evaluate(c)
				}
			}
		}
		config := &common.Config{}
		if proto.Unmarshal(b, config) == nil {
			if c, err := FromConfig("fuzz", config); err == nil {
				evaluate(c)
			}
		}
	})
}
